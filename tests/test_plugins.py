"""A modality and a method added from outside src/ (tests/toy_plugins.py) train, embed and evaluate
through the same path as the built-ins: the CLI, run folders and eval.json."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nebula.cli import main


@pytest.fixture
def toy(tmp_path):
    # a module imported once registers once: re-register in case an earlier test removed the entries
    import importlib

    from tests import toy_plugins

    importlib.reload(toy_plugins)
    yield toy_plugins.write_toy_file(tmp_path / "samples.toy")
    toy_plugins.unregister_all()


COMMON = ["--epochs", "3", "--batch-size", "16", "--device", "cpu", "--quiet", "--set", "train.figures=false"]


def test_toy_method_on_toy_modality_through_the_cli(tmp_path, toy, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", str(toy), "-o", str(run), "--set", "method=toy-ae", *COMMON, "--epochs", "40",
                 "--lr", "0.05"]) == 0
    info = json.loads((run / "run.json").read_text())
    assert info["modality"] == "toyvec" and info["method"] == "toy-ae" and info["variant"] == "toy-ae"
    assert "model" not in (run / "config.yaml").read_text()  # only the toy method's (no) sections
    assert main(["embed", str(run), "--data", str(toy), "--out", str(tmp_path / "z.npz")]) == 0
    with np.load(tmp_path / "z.npz") as f:
        assert f["z"].shape == (60, 2)
    assert main(["eval", str(run), "--no-figures"]) == 0
    ev = json.loads((run / "eval.json").read_text())
    assert ev["plugins"]["toy-stats"]["samples"] == 60 and ev["reconstruction"] is None and ev["anchors"] is None
    assert ev["clustering"]["kmeans"]["accuracy"] > 0.9  # the first feature separates the classes


def test_nvc_on_the_toy_modality_uses_its_record(tmp_path, toy):
    run = tmp_path / "nvc"
    assert main(["train", "--data", str(toy), "-o", str(run), "-v", "-m", "--anchors", "3", "--latent-dim", "2",
                 "--set", "train.pretrain_epochs=1", "--set", "model.feature_dim=8", *COMMON]) == 0
    info = json.loads((run / "run.json").read_text())
    assert info["architecture"] == {"encoder": "toy-linear", "decoder": "toy-linear", "reconstruction": "toy-l1"}
    assert main(["eval", str(run), "--no-figures"]) == 0
    ev = json.loads((run / "eval.json").read_text())
    assert "toy-stats" in ev["plugins"] and ev["anchors"]["used"] >= 1 and ev["variant"] == "tvae"
