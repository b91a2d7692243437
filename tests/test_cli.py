"""End-to-end: the `nebula` command on a tiny generated dataset."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import yaml

from nebula.cli import main
from nebula.config import Config


def test_train_writes_complete_run_folder(tmp_path, tiny_npz, capsys):
    run = tmp_path / "run"
    code = main(["train", "--data", str(tiny_npz), "-v", "-m", "-r", "-1", "-o", str(run), "--anchors", "3",
                 "--latent-dim", "4", "--epochs", "3", "--batch-size", "16", "--set", "train.pretrain_epochs=1", "--quiet"])
    assert code == 0
    for name in ("config.yaml", "model.safetensors", "metrics.csv", "embeddings.npz", "run.json",
                 "figures/reconstructions.png", "figures/manifold.png", "figures/manifold_0.png",
                 "figures/latent_pca_anchor.png", "figures/latent_pca_label.png"):
        assert (run / name).exists(), name
    cfg = Config.from_yaml(run / "config.yaml")
    assert cfg.variant == "nvc-ml" and cfg.model.num_anchors == 3
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert len(rows) == 3 and {"rec", "kl", "near", "metric", "loss"} <= set(rows[0])
    assert rows[0]["near"] == "" and float(rows[-1]["metric"]) >= 0
    with np.load(run / "embeddings.npz") as f:
        assert f["z"].shape == (60, 4) and f["z"].dtype == np.float32
        assert f["assign"].dtype == np.int64 and f["assign"].min() >= 0 and f["assign"].max() < 3
        assert f["anchors"].shape == (3, 4) and f["y"].shape == (60,) and f["split"].dtype == np.int8
        assert f["rec"].shape == (60,) and np.isfinite(f["rec"]).all()
    assert "run folder" in capsys.readouterr().out

    out = tmp_path / "emb.npz"
    assert main(["embed", str(run), "--data", str(tiny_npz), "--out", str(out), "--device", "cpu"]) == 0
    with np.load(out) as f, np.load(run / "embeddings.npz") as g:
        np.testing.assert_allclose(f["z"], g["z"], rtol=1e-5, atol=1e-5)

    # a finished run is not overwritten without --overwrite
    assert main(["train", "--data", str(tiny_npz), "-o", str(run), "--epochs", "1", "--quiet"]) == 2
    assert "already holds a finished run" in capsys.readouterr().err


@pytest.mark.parametrize("variant, anchors", [("ae", False), ("vae", False), ("tae", True)])
def test_variants_by_name(tmp_path, tiny_npz, variant, anchors):
    run = tmp_path / variant
    assert main(["train", "--data", str(tiny_npz), "--variant", variant, "-o", str(run), "--epochs", "2",
                 "--set", "train.pretrain_epochs=1", "--set", "train.figures=false", "--quiet", "-c"]) == 0
    with np.load(run / "embeddings.npz") as f:
        assert (f["assign"].min() >= 0) == anchors
    assert Config.from_yaml(run / "config.yaml").model.arch == "conv"


def test_config_file_and_overrides(tmp_path, tiny_npz):
    cfg = {"data": {"source": str(tiny_npz)}, "model": {"latent_dim": 3, "num_anchors": 2, "arch": "fire", "channels": [8, 16]},
           "train": {"epochs": 2, "pretrain_epochs": 1, "figures": False, "batch_size": 20}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    run = tmp_path / "r"
    assert main(["train", "--config", str(path), "--set", "model.latent_dim=5", "-o", str(run), "--quiet"]) == 0
    saved = Config.from_yaml(run / "config.yaml")
    assert saved.model.latent_dim == 5 and saved.model.arch == "fire" and saved.variant == "tvae"


@pytest.mark.parametrize("argv, message", [
    (["train", "--data", "/no/such/path"], "no such file"),
    (["train", "--set", "train.lrr=1"], "did you mean 'train.lr'"),
    (["train", "--lr", "0"], "train.lr must be > 0"),
    (["train", "-r", "3"], "needs -m"),
    (["train", "--variant", "tvae", "-v"], "either --variant"),
])
def test_bad_input_exits_2_with_one_line(argv, message, capsys, tmp_path):
    assert main([*argv, "-o", str(tmp_path / "x"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_ctrl_c_during_start_up_is_deferred_until_the_imports_are_done():
    """SIGINT while nebula starts only records itself (an exception raised inside a C++ extension's import
    aborts the process); resume restores the previous handler and reports it."""
    import os
    import signal

    from nebula.cli import startup

    before = signal.getsignal(signal.SIGINT)
    deferred = startup.defer()
    os.kill(os.getpid(), signal.SIGINT)  # no KeyboardInterrupt here
    assert startup.resume(deferred) is True
    assert signal.getsignal(signal.SIGINT) is before
    assert startup.resume(startup.defer()) is False
