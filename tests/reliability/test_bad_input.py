"""Every bad input of issue 8 through the `nebula` command: one line on stderr naming the file/key and what
was expected vs found, exit code 2, no traceback (unless --debug), and no run folder left looking complete."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from nebula.cli import main
from nebula.data import load
from nebula.errors import DataError

from .helpers import cloud, csv_text, idx_bytes, optdigits_text, pcd_bytes, ply_bytes, tiny_images, write_h5

SMALL = ["--epochs", "1", "--latent-dim", "2", "--batch-size", "8", "--set", "model.hidden=[16]",
         "--set", "train.figures=false", "--device", "cpu", "--quiet"]


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err.strip()


def assert_clean_failure(code: int, err: str, *needles: str, run: Path | None = None) -> None:
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("nebula: error: "), err
    for needle in needles:
        assert needle in err, (needle, err)
    if run is not None:  # nothing that looks like a finished run
        assert not (run / "model.safetensors").exists() and not (run / "embeddings.npz").exists()
        if (run / "run.json").exists():
            assert json.loads((run / "run.json").read_text())["status"] != "complete"


# ------------------------------------------------------------------ broken data files
def _idx_folder(tmp: Path, truncate_images: int | None = None, labels: int | None = None, gz: bool = False) -> Path:
    x, y = tiny_images(20)
    folder = tmp / "idx"
    folder.mkdir()
    suffix = ".gz" if gz else ""
    img = idx_bytes(x)
    if truncate_images is not None:
        img = img[:truncate_images]
    lab = idx_bytes(y[:labels].astype(np.uint8) if labels is not None else y.astype(np.uint8))
    for name, data in ((f"train-images-idx3-ubyte{suffix}", img), (f"train-labels-idx1-ubyte{suffix}", lab)):
        (folder / name).write_bytes(gzip.compress(data) if gz else data)
    return folder


def _idx_truncated(tmp: Path):
    return _idx_folder(tmp, truncate_images=100), ("train-images-idx3-ubyte", "bytes, expected")


def _idx_gz_truncated(tmp: Path):
    folder = _idx_folder(tmp, gz=True)
    gz = folder / "train-images-idx3-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:-40])
    return folder, ("train-images-idx3-ubyte.gz", "cannot read IDX data")


def _idx_corrupt(tmp: Path):
    folder = _idx_folder(tmp)
    (folder / "train-images-idx3-ubyte").write_bytes(b"\x12\x34\x56\x78" + bytes(100))
    return folder, ("not an IDX file", "found 12345678")


def _idx_label_count(tmp: Path):
    return _idx_folder(tmp, labels=15), ("15 labels for 20 images",)


def _h5_truncated(tmp: Path):
    x, y = tiny_images(20)
    h5 = write_h5(tmp / "usps.h5", x, y)
    h5.write_bytes(h5.read_bytes()[: len(h5.read_bytes()) // 3])
    return h5, ("usps.h5", "cannot read HDF5")


def _h5_corrupt(tmp: Path):
    (tmp / "junk.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 4)
    return tmp / "junk.h5", ("junk.h5", "HDF5")


def _h5_label_count(tmp: Path):
    with h5py.File(tmp / "mismatch.h5", "w") as f:
        f["train/data"] = np.zeros((10, 64), np.float32)
        f["train/target"] = np.zeros(7, np.int64)
    return tmp / "mismatch.h5", ("7 labels for 10 images",)


def _pcd_truncated(tmp: Path):
    (tmp / "cut.pcd").write_bytes(pcd_bytes(cloud(50))[:-77])
    return tmp / "cut.pcd", ("cut.pcd", "PCD binary data has", "expected 600")


def _pcd_corrupt(tmp: Path):
    (tmp / "nohead.pcd").write_bytes(b"VERSION 0.7\nFIELDS x y\n")
    return tmp / "nohead.pcd", ("nohead.pcd", "PCD")


def _ply_truncated(tmp: Path):
    (tmp / "cut.ply").write_bytes(ply_bytes(cloud(50))[:-100])
    return tmp / "cut.ply", ("cut.ply", "PLY element 'vertex' needs 600 bytes")


def _ply_corrupt(tmp: Path):
    (tmp / "bad.ply").write_bytes(b"ply\nformat weird 1.0\nend_header\n")
    return tmp / "bad.ply", ("bad.ply", "PLY format 'weird' not supported")


def _optdigits_truncated(tmp: Path):
    text = optdigits_text(*tiny_images(20))
    (tmp / "optdigits.tra").write_text(text[: len(text) // 2 + 7])
    return tmp / "optdigits.tra", ("optdigits.tra:", "expected 65")


def _csv_corrupt(tmp: Path):
    (tmp / "texts.csv").write_bytes(csv_text().encode()[:10] + b"\xff\xfe\x00garbage")
    return tmp / "texts.csv", ("texts.csv", "not valid utf-8")


def _csv_truncated(tmp: Path):
    full = csv_text()
    (tmp / "cut.csv").write_text(full[: full.rindex(",")])  # the last row lost its text column
    return tmp / "cut.csv", ("cut.csv:21", "expected at least 2 columns, found 1")


def _labels_count(tmp: Path):
    x, y = tiny_images(20)
    np.savez(tmp / "labels.npz", x=x, y=y[:-3])
    return tmp / "labels.npz", ("labels.npz", "17 labels for 20 images")


def _nan_inf(tmp: Path):
    x, y = tiny_images(20)
    xf = x.astype(np.float32) / 255
    xf[3, 2, 2] = np.nan
    xf[5, 0, 0] = np.inf
    np.savez(tmp / "nan.npz", x=xf, y=y)
    return tmp / "nan.npz", ("nan.npz", "2 samples contain NaN or inf")


def _empty(tmp: Path):
    np.savez(tmp / "empty.npz", x=np.zeros((0, 8, 8), np.uint8), y=np.zeros(0, np.int64))
    return tmp / "empty.npz", ("empty.npz", "empty", "found 0")


def _unknown_format(tmp: Path):
    (tmp / "data.weird").write_bytes(b"\x00\x01\x02")
    return tmp / "data.weird", ("data.weird", "unknown data format", ".weird")


def _missing(tmp: Path):
    return tmp / "no" / "such.npz", ("such.npz", "no such file")


#: case -> builder(tmp) -> (path to train on, fragments the error message must contain)
BAD_FILES = {"idx-truncated": _idx_truncated, "idx-gz-truncated": _idx_gz_truncated, "idx-corrupt-magic": _idx_corrupt,
             "idx-label-count": _idx_label_count, "h5-truncated": _h5_truncated, "h5-corrupt": _h5_corrupt,
             "h5-label-count": _h5_label_count, "pcd-truncated": _pcd_truncated, "pcd-corrupt": _pcd_corrupt,
             "ply-truncated": _ply_truncated, "ply-corrupt": _ply_corrupt, "csv-optdigits-truncated": _optdigits_truncated,
             "csv-text-corrupt": _csv_corrupt, "csv-text-truncated": _csv_truncated, "labels-count": _labels_count,
             "nan-inf": _nan_inf, "empty": _empty, "unknown-format": _unknown_format, "missing-path": _missing}




@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_data_file(case, tmp_path, capsys):
    path, needles = BAD_FILES[case](tmp_path)
    run = tmp_path / "run"
    code, err = run_cli(["train", "--data", str(path), "-o", str(run), *SMALL], capsys)
    assert_clean_failure(code, err, *needles, run=run)
    assert not run.exists(), "bad input must not leave a run folder behind"
    with pytest.raises(DataError):  # the Python API raises the same error
        load(path)


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        main(["--debug", "train", "--data", str(tmp_path / "missing.npz"), "-o", str(tmp_path / "r"), *SMALL])


# ------------------------------------------------------------------ configuration and values
@pytest.mark.parametrize("extra, needles", [
    (["--set", "train.lrr=0.1"], ("unknown config key 'train.lrr'", "did you mean 'train.lr'")),
    (["--set", "modle.latent_dim=3"], ("unknown config section 'modle'", "did you mean 'model'")),
    (["--set", "train.epochs=many"], ("train.epochs", "expects an integer", "'many'")),
    (["--lr", "0"], ("train.lr must be > 0", "found 0")),
    (["--lr", "-0.01"], ("train.lr must be > 0", "found -0.01")),
    (["-m", "--anchors", "0"], ("model.num_anchors must be >= 1", "found 0")),
    (["-m", "-r", "-1", "--batch-size", "1"], ("train.batch_size must be >= 2 with metric learning", "found 1")),
    (["--grad-clip", "-1"], ("train.grad_clip must be >= 0", "found -1")),
    (["--set", "train.precision=fp8"], ("train.precision must be fp32 or bf16", "'fp8'")),
])
def test_bad_config_values(extra, needles, tmp_path, capsys):
    x, y = tiny_images(20)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    run = tmp_path / "run"
    code, err = run_cli(["train", "--data", str(tmp_path / "d.npz"), "-o", str(run), *SMALL, *extra], capsys)
    assert_clean_failure(code, err, *needles)
    assert not run.exists()


def test_unknown_key_in_config_file(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text("trian:\n  epochs: 2\n")
    code, err = run_cli(["train", "--config", str(tmp_path / "c.yaml"), "-o", str(tmp_path / "r"), "--quiet"], capsys)
    assert_clean_failure(code, err, "unknown config key 'trian'", "did you mean 'train'")
    (tmp_path / "c.yaml").write_text("train:\n  batch_sise: 2\n")
    code, err = run_cli(["train", "--config", str(tmp_path / "c.yaml"), "-o", str(tmp_path / "r"), "--quiet"], capsys)
    assert_clean_failure(code, err, "unknown config key 'train.batch_sise'", "did you mean 'train.batch_size'")


def test_images_too_small_for_the_conv_stack(tmp_path, capsys):
    x, y = tiny_images(20)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    run = tmp_path / "run"
    code, err = run_cli(["train", "--data", str(tmp_path / "d.npz"), "-c", "--set", "model.channels=[4,4,4,4,4]",
                         "-o", str(run), *SMALL], capsys)
    assert_clean_failure(code, err, "too small", "8")
    assert not run.exists()


def test_finished_run_is_refused_without_overwrite(tmp_path, capsys):
    x, y = tiny_images(20)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    run = tmp_path / "run"
    argv = ["train", "--data", str(tmp_path / "d.npz"), "-o", str(run), *SMALL]
    assert main(argv) == 0
    capsys.readouterr()
    before = (run / "model.safetensors").read_bytes()
    code, err = run_cli(argv, capsys)
    assert_clean_failure(code, err, str(run), "already holds a finished run", "--overwrite")
    assert (run / "model.safetensors").read_bytes() == before
    assert json.loads((run / "run.json").read_text())["status"] == "complete"
    assert main([*argv, "--overwrite", "--seed", "3"]) == 0
    assert (run / "model.safetensors").read_bytes() != before


def test_resume_of_missing_or_empty_folder(tmp_path, capsys):
    code, err = run_cli(["train", "--resume", str(tmp_path / "nothing")], capsys)
    assert_clean_failure(code, err, "nothing to resume", "no config.yaml")
    (tmp_path / "garbled").mkdir()
    (tmp_path / "garbled" / "config.yaml").write_bytes(b"\xff\xfe not yaml")
    code, err = run_cli(["train", "--resume", str(tmp_path / "garbled")], capsys)
    assert_clean_failure(code, err, "config.yaml", "UTF-8")
