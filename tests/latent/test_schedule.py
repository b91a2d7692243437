"""Schedules that scale with the data: warm-up epochs, dead-anchor timing; the two runs of issue 13."""

from __future__ import annotations

import json

import numpy as np
import torch

from nebula.config import Config
from nebula.data.base import NebulaDataset
from nebula.latent.schedule import dead_after_steps, resolve_batch_size, resolve_pretrain_epochs
from nebula.nvc.loss import NebulaLoss


def test_resolve_pretrain_epochs():
    assert resolve_pretrain_epochs(-1, 100) == (50, None)  # half the run
    assert resolve_pretrain_epochs(-1, 5) == (2, None)
    assert resolve_pretrain_epochs(-1, 3) == (1, None)
    assert resolve_pretrain_epochs(-1, 1) == (0, None)
    assert resolve_pretrain_epochs(4, 100) == (4, None)
    kept, note = resolve_pretrain_epochs(10, 3)
    assert kept == 2 and "placed after 2 epoch(s)" in note


def test_dead_after_steps_follows_the_epoch():
    assert dead_after_steps(2.0, 1) == 2
    assert dead_after_steps(2.0, 36) == 72
    assert dead_after_steps(0.1, 1) == 1


def test_resolve_batch_size_gives_small_sets_enough_steps():
    assert resolve_batch_size(256, 170, 100, 0) == 256  # off
    assert resolve_batch_size(256, 170, 100, 1000) == 32  # floor: 6 steps an epoch instead of 1
    assert resolve_batch_size(256, 1437, 100, 1000) == 143
    assert resolve_batch_size(256, 8000, 100, 1000) == 256  # large sets keep the batch
    assert resolve_batch_size(16, 48, 3, 1000) == 16  # never above the request


def test_small_set_with_one_step_an_epoch_reseeds_dead_anchors(monkeypatch):
    """300 samples, batch 256: 1-2 steps an epoch. Anchors placed where no latent is must be re-seeded."""
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 4, (3, 8))
    x = torch.from_numpy((centres[np.arange(300) % 3] + rng.normal(0, 0.5, (300, 8))).astype(np.float32))
    ds = NebulaDataset(x=x, y=np.arange(300) % 3, split=(np.arange(300) % 5 == 0).astype(np.int8),
                       meta={"name": "blobs", "modality": "tabular"})
    original = NebulaLoss.place_with_parts

    def far_away(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        with torch.no_grad():
            self.anchors[3:] = 1e3  # three anchors nobody is near: dead
        return out

    monkeypatch.setattr(NebulaLoss, "place_with_parts", far_away)
    from nebula.run import train

    cfg = Config().apply_variant("tvae")
    cfg.model.num_anchors, cfg.model.latent_dim, cfg.model.hidden = 6, 4, [32]
    cfg.train.epochs, cfg.train.batch_size, cfg.train.quiet, cfg.train.figures = 12, 256, True, False
    cfg.train.anchor_init, cfg.train.min_steps = "kmeans", 0  # keep one step an epoch
    run = train(cfg, dataset=ds)
    anchors = run.model.anchors
    assert int(anchors.reseeded) >= 3
    assert float(anchors.anchors.detach().abs().max()) < 1e2  # none left where no latent is


def test_three_epoch_cli_run_trains_with_placed_anchors(tmp_path, tiny_images, capsys):
    from nebula.cli import main

    x, y = tiny_images
    np.savez(tmp_path / "tiny.npz", x=x, y=y)
    out = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "tiny.npz"), "-v", "-m", "--epochs", "3", "--anchors", "3",
                 "--batch-size", "16", "--set", "train.figures=false", "-o", str(out)]) == 0
    header, *rows = (out / "metrics.csv").read_text().splitlines()
    assert "near" in header.split(",") and len(rows) == 3  # the anchor term after one warm-up epoch
    with np.load(out / "embeddings.npz") as f:
        assert f["assign"].min() >= 0 and len(np.unique(f["assign"])) >= 2
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "complete"
    assert "anchors placed at epoch 1" in capsys.readouterr().out
    assert info["messages"][0].startswith("anchors placed at epoch 1: ")  # run.json keeps where they went
    # an explicit warm-up longer than the run is shortened, and stderr says so
    out2 = tmp_path / "run2"
    assert main(["train", "--data", str(tmp_path / "tiny.npz"), "-v", "-m", "--epochs", "3", "--anchors", "3",
                 "--batch-size", "16", "--set", "train.figures=false", "--set", "train.pretrain_epochs=10",
                 "--quiet", "-o", str(out2)]) == 0
    assert "placed after 2 epoch(s)" in capsys.readouterr().err
    with np.load(out2 / "embeddings.npz") as f:
        assert f["assign"].min() >= 0


def test_partition_weight_holds_a_tsne_partition_and_only_that():
    """The anchor term weighs loss.partition_weight when a t-SNE map's parts label it, else anchor_weight."""
    from nebula.run import train

    rng = np.random.default_rng(0)
    centres = rng.normal(0, 4, (3, 8))

    def blobs(n: int) -> NebulaDataset:
        x = torch.from_numpy((centres[np.arange(n) % 3] + rng.normal(0, 0.5, (n, 8))).astype(np.float32))
        return NebulaDataset(x=x, y=np.arange(n) % 3, split=(np.arange(n) % 5 == 0).astype(np.int8),
                             meta={"name": "blobs", "modality": "tabular"})

    def weight(ds: NebulaDataset, *overrides: str) -> float:
        cfg = Config().apply_variant("tvae")
        cfg.model.num_anchors, cfg.model.latent_dim, cfg.model.hidden = 3, 2, [16]
        cfg.train.epochs, cfg.train.quiet, cfg.train.figures = 2, True, False
        cfg.override(list(overrides))
        return train(cfg, dataset=ds).model.anchors.anchor_weight

    big, small = blobs(150), blobs(50)  # 120 training samples: t-SNE; 40: k-means on the latents instead
    assert weight(big) == 16.0
    assert weight(big, "loss.partition_weight=0", "loss.anchor_weight=2") == 2.0
    assert weight(big, "train.anchor_init=kmeans") == 1.0
    assert weight(small) == 1.0
