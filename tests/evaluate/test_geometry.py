"""F-score, IoU, geometry evaluator and 3D renderers."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from nebula.config import Config
from nebula.data import load
from nebula.evaluate.geometry import (
    fscore,
    geometry_metrics,
    point_metrics,
    render_points,
    render_voxels,
    voxel_iou,
)
from nebula.evaluate.plots import renderer_for
from nebula.evaluate.registry import evaluators_for
from nebula.losses.chamfer import chamfer_distance
from nebula.nvc.model import NebulaCoder


def test_fscore() -> None:
    x = torch.rand(2, 30, 3)
    torch.testing.assert_close(fscore(x, x, 0.01), torch.ones(2))
    assert (fscore(x, x + 5.0, 0.5) == 0).all()
    # half of the prediction is off: precision 0.5, recall 1 -> F = 2/3
    pred = torch.cat([x[:, :15], x[:, :15] + 10.0], dim=1)
    target = x[:, :15]
    torch.testing.assert_close(fscore(pred, target, 0.01), torch.full((2,), 2 / 3))
    m = point_metrics(pred, target)
    assert abs(m["chamfer"] - float(chamfer_distance(pred, target).mean())) < 1e-5
    assert abs(m["fscore@0.02"] - 2 / 3) < 1e-5


def test_voxel_iou() -> None:
    a = torch.zeros(1, 1, 4, 4, 4)
    b = torch.zeros(1, 1, 4, 4, 4)
    a[0, 0, 0, :2] = 1  # 8 voxels
    b[0, 0, 0, 1:3] = 1  # 8 voxels, 4 shared
    torch.testing.assert_close(voxel_iou(a, b), torch.tensor([4 / 12]))
    torch.testing.assert_close(voxel_iou(torch.zeros(1, 8), torch.zeros(1, 8)), torch.ones(1))


def test_registered_for_3d_modalities() -> None:
    assert "geometry" in evaluators_for("points") and "geometry" in evaluators_for("voxels")
    assert "geometry" not in evaluators_for("image")
    assert renderer_for("points") is render_points and renderer_for("voxels") is render_voxels


def test_geometry_metrics_on_untrained_model() -> None:
    ds = load("shapes", options={"n_per_class": 3, "num_points": 32, "task": "complete"})
    cfg = Config()
    cfg.model.latent_dim = 4
    cfg.model.options.update(point_channels=[8, 16], fold_hidden=[8, 8])
    model = NebulaCoder.from_config(cfg, ds.input_shape, ds.target_shape, "points")
    out = geometry_metrics(SimpleNamespace(model=model), ds)
    assert out["geometry_samples"] == int((ds.split == 1).sum())
    for key in ("chamfer", "fscore@0.05", "input_chamfer", "input_fscore@0.02", "chamfer_reduction"):
        assert np.isfinite(out[key])
    assert 0 < out["input_chamfer"] < 1


def test_renderers_write_png(tmp_path: Path) -> None:
    render_points(np.random.rand(2, 3, 100, 3) * 2 - 1, tmp_path / "p.png", "clouds")
    grid = np.zeros((2, 2, 1, 8, 8, 8))
    grid[..., 2:5, 2:5, 2:5] = 0.9
    render_voxels(grid, tmp_path / "v.png", "voxels")
    assert (tmp_path / "p.png").stat().st_size > 1000 and (tmp_path / "v.png").stat().st_size > 1000
