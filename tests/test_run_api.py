"""Run API and resume overrides (issue 17, points 1 and 7)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nebula.config import Config, LossConfig, TrainConfig
from nebula.errors import ConfigError, NebulaError
from nebula.estimator import NebulaEmbedding
from nebula.run import load, train

from .reliability.helpers import tiny_config, tiny_images


@pytest.fixture(scope="module")
def two_epochs(tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    x, y = tiny_images(60)
    np.savez(root / "d.npz", x=x, y=y)
    cfg = tiny_config(root / "run", epochs=2)
    cfg.data.source = str(root / "d.npz")
    train(cfg)
    return root


def test_embed_accepts_numpy_and_names_wrong_shapes(two_epochs):
    run = load(two_epochs / "run")
    x, _ = tiny_images(60)
    as_float = x.astype(np.float32) / 255.0
    z = run.embed(as_float[:, None])
    np.testing.assert_allclose(run.embed(x), z, atol=1e-6)  # uint8 (N, H, W): scaled and given its channel axis
    np.testing.assert_allclose(run.embed(torch.from_numpy(as_float[:, None])), z, atol=1e-6)
    assert z.shape == (60, 3) and z.dtype == np.float32
    with pytest.raises(NebulaError, match=r"expected \(N, 1, 8, 8\)"):
        run.embed(np.zeros((4, 64), np.float32))
    with pytest.raises(NebulaError, match="add the batch axis"):
        run.embed(as_float[0])


def test_resume_extends_a_finished_run_and_refuses_unsafe_changes(two_epochs, tmp_path, capsys):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(two_epochs / "run", run_dir)
    with pytest.raises(NebulaError, match="trained 2 epochs already"):
        train(Config(output=str(run_dir)), resume=True)
    with pytest.raises(ConfigError, match="cannot change train.lr"):
        train(Config(output=str(run_dir)), resume=True, resume_overrides={"train.lr": 0.5})
    with pytest.raises(ConfigError, match="not both"):
        train(Config(output=str(run_dir)), resume=True, overwrite=True)
    # an override equal to the saved value is accepted; more epochs extend the run
    run = train(Config(output=str(run_dir)), resume=True, resume_overrides={"train.epochs": 4, "train.batch_size": 16})
    assert "continuing at epoch 3 of 4 (extended from 2 epochs" in capsys.readouterr().err
    rows = (run_dir / "metrics.csv").read_text().strip().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == [1, 2, 3, 4]
    assert Config.from_yaml(run_dir / "config.yaml").train.epochs == 4 and run.info["status"] == "complete"


def test_estimator_defaults_are_the_library_defaults():
    params = NebulaEmbedding().get_params()
    assert params["epochs"] == TrainConfig.epochs and params["beta"] == LossConfig.beta
    assert params["lr"] == TrainConfig.lr and params["pretrain_epochs"] == TrainConfig.pretrain_epochs


def test_estimator_refuses_more_anchors_than_samples():
    x = np.random.default_rng(0).normal(size=(6, 4))
    with pytest.raises(ValueError, match="n_anchors=10 is more than the 6 samples"):
        NebulaEmbedding(n_anchors=10, epochs=1).fit(x)


def test_nebula_train_is_the_training_function_whatever_was_imported_first(tmp_path):
    import subprocess
    import sys

    code = ("import nebula.train.callbacks, nebula\n"
            "from tests.reliability.helpers import tiny_config, tiny_dataset\n"
            "run = nebula.train(tiny_config(None, epochs=1), dataset=tiny_dataset())\n"
            "print(type(run).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    assert out.stdout.strip().splitlines()[-1] == "Run"
