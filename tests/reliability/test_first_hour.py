"""Issue 17, point 3: the bad inputs a newcomer meets in the first hour, each through a real `nebula`
process: exit code 2 (130 for Ctrl-C), exactly one line on stderr, no "Traceback", no stray or
temporary file, and nothing of an existing run lost or changed."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import nebula
from nebula.run import train

from .helpers import tiny_config, tiny_images

SRC = str(Path(nebula.__file__).resolve().parents[1])
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
       "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
TINY = ["--epochs", "1", "--latent-dim", "2", "--batch-size", "16", "--set", "model.hidden=[16]",
        "--set", "train.figures=false", "--device", "cpu", "--quiet"]


def nebula_cli(*argv: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nebula", *argv], env=ENV, capture_output=True, text=True,
                          timeout=timeout)


def snapshot(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``folder`` (hidden ones included)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_one_line_error(res: subprocess.CompletedProcess, *needles: str, code: int = 2) -> None:
    err = res.stderr.strip()
    assert res.returncode == code, (res.returncode, err[-2000:])
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err[-2000:]
    for needle in needles:
        assert needle in err, (needle, err)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished tiny tae run (2 epochs, 3 anchors) on an .npz of 60 images."""
    root = tmp_path_factory.mktemp("first_hour")
    x, y = tiny_images(60)
    np.savez(root / "data.npz", x=x, y=y)
    cfg = tiny_config(root / "run", epochs=2)
    cfg.data.source = str(root / "data.npz")
    cfg.loss.metric_order = 0
    train(cfg)
    return root / "run"


@pytest.fixture
def work(tmp_path, finished) -> Path:
    """A private copy of the finished run (tests damage it) in an otherwise empty folder."""
    import shutil

    shutil.copytree(finished, tmp_path / "run")
    shutil.copy(finished.parent / "data.npz", tmp_path / "data.npz")
    return tmp_path


def _damage_then_check(work: Path, name: str, content: bytes, argv: list[str], *needles: str) -> None:
    run = work / "run"
    (run / name).write_bytes(content)
    before = snapshot(work)
    res = nebula_cli(*argv)
    assert_one_line_error(res, *needles)
    assert snapshot(work) == before  # nothing written, nothing lost


def test_eval_truncated_embeddings(work):
    data = (work / "run" / "embeddings.npz").read_bytes()
    _damage_then_check(work, "embeddings.npz", data[: len(data) // 3], ["eval", str(work / "run")],
                       "embeddings.npz", "truncated or corrupt")


def test_embed_corrupt_embeddings(work):
    _damage_then_check(work, "embeddings.npz", b"PK\x03\x04 garbage" * 10,
                       ["embed", str(work / "run"), "--data", str(work / "data.npz"), "--out", str(work / "e.npz")],
                       "embeddings.npz", "truncated or corrupt")


def test_eval_corrupt_run_json(work):
    _damage_then_check(work, "run.json", b'{"status": "compl', ["eval", str(work / "run")], "run.json", "not valid JSON")


def test_output_below_a_regular_file(work):
    (work / "afile").write_text("x")
    before = snapshot(work)
    res = nebula_cli("train", "--data", str(work / "data.npz"), "-o", str(work / "afile" / "run"), *TINY)
    assert_one_line_error(res, "afile", "regular file")
    assert snapshot(work) == before


def test_output_on_a_read_only_folder(work):
    ro = work / "ro"
    ro.mkdir()
    mounted = False
    if os.geteuid() == 0:  # root ignores permission bits: a read-only bind mount is the real thing
        ok = subprocess.run(["mount", "--bind", str(ro), str(ro)], capture_output=True).returncode == 0
        ok = ok and subprocess.run(["mount", "-o", "remount,ro,bind", str(ro)], capture_output=True).returncode == 0
        if not ok:
            subprocess.run(["umount", str(ro)], capture_output=True)
            pytest.skip("running as root without the right to mount a read-only folder")
        mounted = True
    else:
        ro.chmod(0o500)
    try:
        before = snapshot(work)
        res = nebula_cli("train", "--data", str(work / "data.npz"), "-o", str(ro / "run"), *TINY)
        assert_one_line_error(res, str(ro), "read-only")
        res = nebula_cli("embed", str(work / "run"), "--data", str(work / "data.npz"), "--out", str(ro / "e.npz"))
        assert_one_line_error(res, str(ro))
        assert snapshot(work) == before
    finally:
        if mounted:
            subprocess.run(["umount", str(ro)], capture_output=True)
        else:
            ro.chmod(0o700)


def test_embed_out_is_a_folder(work):
    (work / "outdir").mkdir()
    before = snapshot(work)
    res = nebula_cli("embed", str(work / "run"), "--data", str(work / "data.npz"), "--out", str(work / "outdir"))
    assert_one_line_error(res, "outdir", "is a folder")
    assert snapshot(work) == before and sorted(p.name for p in work.iterdir()) == ["data.npz", "outdir", "run"]


def test_unknown_loader_option_of_a_named_dataset(tmp_path):
    res = nebula_cli("train", "--data", "digits", "--data-option", "bogus=1", "-o", str(tmp_path / "run"), *TINY)
    assert_one_line_error(res, "digits", "bogus")
    assert list(tmp_path.iterdir()) == []


def test_npz_without_x_names_the_missing_array(tmp_path):
    np.savez(tmp_path / "d.npz", images=np.zeros((10, 8, 8)))
    res = nebula_cli("train", "--data", str(tmp_path / "d.npz"), "-o", str(tmp_path / "run"), *TINY)
    assert_one_line_error(res, "'x'", "images")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npz"]


def test_more_anchors_than_samples(work):
    res = nebula_cli("train", "--data", str(work / "data.npz"), "-m", "--anchors", "500", "-o", str(work / "big"), *TINY)
    assert_one_line_error(res, "500", "48")  # 48 training samples of 60 (80/20 split)
    assert not (work / "big").exists()


def test_resume_with_every_checkpoint_unreadable(work):
    run = work / "run"
    for ckpt in (run / "checkpoints").iterdir():
        (ckpt / "state.pt").write_bytes(b"broken")
    (run / "run.json").write_text(json.dumps({**json.loads((run / "run.json").read_text()), "status": "interrupted"}))
    before = snapshot(work)
    res = nebula_cli("train", "--resume", str(run), "--epochs", "3")
    assert_one_line_error(res, "every checkpoint is unreadable")
    assert snapshot(work) == before  # the notes about each checkpoint are not printed on stdout either
    assert "unreadable" not in res.stdout


def test_ctrl_c_during_start_up(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "nebula", "train", "--data", "digits", "-o", str(tmp_path / "r"), *TINY],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.4)  # inside the imports (torch and the data loaders take seconds)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert err.strip() == "nebula: interrupted", err[-2000:]


def test_resume_extends_a_finished_run(work):
    run = work / "run"
    res = nebula_cli("train", "--resume", str(run), "--epochs", "4")
    assert res.returncode == 0, res.stderr[-2000:]
    assert "continuing at epoch 3 of 4" in res.stderr
    assert "epoch 3/4" in res.stdout and "epoch 4/4" in res.stdout and f"nebula eval {run}" in res.stdout
    rows = (run / "metrics.csv").read_text().strip().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == ["1", "2", "3", "4"]
    assert json.loads((run / "run.json").read_text())["status"] == "complete"


@pytest.mark.parametrize("extra, needle", [(["--lr", "0.5"], "cannot change train.lr"),
                                           (["--set", "model.latent_dim=7"], "cannot change model.latent_dim"),
                                           (["--overwrite"], "not both"),
                                           ([], "trained 2 epochs already")])
def test_resume_refuses_unsafe_changes(work, extra, needle):
    before = snapshot(work)
    res = nebula_cli("train", "--resume", str(work / "run"), *(["--epochs", "4"] if extra else []), *extra)
    assert_one_line_error(res, needle)
    assert snapshot(work) == before
