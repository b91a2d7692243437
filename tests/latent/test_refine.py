"""Partition targets and their refinement from the latents (nebula.latent.refine) and their wiring."""

from __future__ import annotations

import numpy as np
import torch

from nebula.config import Config
from nebula.data.base import NebulaDataset
from nebula.latent.refine import align_parts, part_means, refine_epochs


def test_align_parts_renumbers_to_the_old_partition():
    old = np.array([0, 0, 1, 1, 2, 2, -1])
    new = np.array([2, 2, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(align_parts(new, old, 3), [0, 0, 1, 1, 2, 2, 2])


def test_part_means_and_empty_parts():
    mu = torch.tensor([[0.0, 0.0], [2.0, 0.0], [5.0, 5.0]])
    fallback = torch.full((3, 2), 9.0)
    means = part_means(mu, torch.tensor([0, 0, 2]), 3, fallback)
    torch.testing.assert_close(means, torch.tensor([[1.0, 0.0], [9.0, 9.0], [5.0, 5.0]]))


def test_refine_epochs_spread_over_the_run():
    assert refine_epochs(10, 100, 2) == [40, 70]
    assert refine_epochs(10, 100, 0) == [] and refine_epochs(5, 6, 3) == []


def test_partition_targets_and_refinement_in_a_run():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 5, (3, 6))
    y = np.arange(150) % 3
    x = torch.from_numpy((centres[y] + rng.normal(0, 0.5, (150, 6))).astype(np.float32))
    ds = NebulaDataset(x=x, y=y, split=(np.arange(150) % 5 == 0).astype(np.int8), meta={"name": "b", "modality": "tabular"})
    from nebula.run import train

    cfg = Config().apply_variant("tvae")
    cfg.model.num_anchors, cfg.model.latent_dim, cfg.model.hidden = 3, 3, [32]
    cfg.train.epochs, cfg.train.batch_size, cfg.train.quiet, cfg.train.figures = 8, 32, True, False
    cfg.loss.pseudo_labels, cfg.train.refine = "partition", 1
    run = train(cfg, dataset=ds)
    model = run.model
    assert model.targets is not None and model.targets.shape == (120,) and int(model.targets.min()) >= 0
    from nebula.evaluate.metrics import hungarian_accuracy

    assert hungarian_accuracy(y, run.embeddings["assign"]) > 0.9
