"""The trainer's neighbour mining: the k nearest other training latents, brute force on a small set."""

from __future__ import annotations

import numpy as np
import torch

from nebula.data import load
from nebula.nvc.callbacks import mine_neighbours
from nebula.run import build_model
from nebula.train.trainer import Trainer

from .reliability.helpers import tiny_config, tiny_images


def test_mine_neighbours_matches_brute_force(tmp_path):
    x, y = tiny_images(40)
    np.savez(tmp_path / "tiny.npz", x=x, y=y)
    cfg = tiny_config(None)
    cfg.data.source = str(tmp_path / "tiny.npz")
    ds = load(cfg.data.source)
    model = build_model(cfg, ds)
    trainer = Trainer(model, ds, cfg)
    table = mine_neighbours(trainer, 3, chunk=7)  # several chunks
    mu = trainer.embed(trainer.train_index)
    d = torch.cdist(mu.double(), mu.double())
    d.fill_diagonal_(float("inf"))
    expected = trainer.train_index[d.topk(3, largest=False).indices]
    assert table.shape == (len(trainer.train_index), 3)
    assert torch.equal(table.sort(1).values, expected.sort(1).values)
    assert not (table == trainer.train_index[:, None]).any()
