"""PointNet encoder, point decoders, and NVC end to end on procedural shapes (points and voxels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from nebula.config import Config
from nebula.data import load
from nebula.nn import build_decoder, build_encoder
from nebula.nn.folding import square_grid
from nebula.nn.pointnet import PointNetEncoder
from nebula.nvc.model import NebulaCoder


def _cfg(**options) -> Config:
    cfg = Config()
    cfg.model.options.update(options)
    return cfg


def test_pointnet_shapes_and_permutation_invariance() -> None:
    enc = build_encoder("pointnet", (50, 3), _cfg(point_channels=[16, 32]).model).eval()
    assert isinstance(enc, PointNetEncoder) and enc.out_features == 32
    x = torch.randn(4, 50, 3)
    h = enc(x)
    assert h.shape == (4, 32)
    torch.testing.assert_close(enc(x[:, torch.randperm(50)]), h)
    with pytest.raises(Exception, match="point clouds"):
        build_encoder("pointnet", (1, 8, 8), _cfg().model)


@pytest.mark.parametrize("name", ["folding", "point-mlp"])
def test_point_decoders(name: str) -> None:
    cfg = _cfg(fold_hidden=[16, 16], point_decoder_hidden=[32])
    enc = build_encoder("pointnet", (30, 3), cfg.model)
    dec = build_decoder(name, 8, (30, 3), cfg.model, enc)
    out = dec(torch.randn(5, 8))
    assert out.shape == (5, 30, 3)
    out.sum().backward()
    assert all(p.grad is not None for p in dec.parameters())


def test_square_grid() -> None:
    g = square_grid(30)
    assert g.shape == (30, 2) and g.min() >= -1 and g.max() <= 1 and len(torch.unique(g, dim=0)) == 30


def test_nebula_coder_completion_target_shape() -> None:
    cfg = _cfg(point_channels=[16, 32], fold_hidden=[16, 16])
    cfg.model.latent_dim = 4
    import nebula.data  # noqa: F401  (registers the points modality)

    model = NebulaCoder.from_config(cfg, (40, 3), (64, 3), "points")
    out = model({"x": torch.randn(6, 40, 3), "target": torch.randn(6, 64, 3)})
    assert out.output.shape == (6, 64, 3) and torch.isfinite(out.loss)
    assert model.architecture == {"encoder": "pointnet", "decoder": "folding", "reconstruction": "chamfer"}


def _train(tmp_path: Path, source: str, data_options: dict, figures: bool = False, **model) -> object:
    from nebula.run import train

    cfg = Config()
    cfg.apply_variant("tvae")
    cfg.data.source = source
    cfg.data.options = data_options
    cfg.model.latent_dim, cfg.model.num_anchors = 6, 3
    cfg.model.options.update(model.pop("options", {}))
    for k, v in model.items():
        setattr(cfg.model, k, v)
    cfg.loss.beta = 0.01
    cfg.train.epochs, cfg.train.batch_size, cfg.train.pretrain_epochs, cfg.train.quiet = 2, 16, 1, True
    cfg.train.figures = figures
    cfg.output = str(tmp_path / "run")
    return train(cfg)


def test_points_end_to_end_completion(tmp_path: Path) -> None:
    from nebula.evaluate.geometry import geometry_metrics
    from nebula.run import load as load_run

    run = _train(tmp_path, "shapes", {"n_per_class": 6, "num_points": 64, "task": "complete"},
                 options={"point_channels": [16, 32], "fold_hidden": [16, 16]})
    folder = Path(run.run_dir)
    with np.load(folder / "embeddings.npz") as f:
        assert f["z"].shape == (42, 6) and np.isfinite(f["rec"]).all()
    loaded = load_run(folder)
    ds = loaded.load_data("shapes")
    torch.testing.assert_close(ds.target, run.dataset.target)
    metrics = geometry_metrics(loaded, ds)
    assert metrics["geometry_task"] == "complete" and metrics["input_chamfer"] > 0 and np.isfinite(metrics["chamfer"])


def test_voxels_end_to_end_fire(tmp_path: Path) -> None:
    from nebula.evaluate.geometry import geometry_metrics

    run = _train(tmp_path, "shapes-voxels", {"n_per_class": 3, "num_points": 128, "resolution": 16},
                 arch="fire", channels=[8, 16], feature_dim=16)
    assert run.model.architecture["reconstruction"] == "voxel_bce"
    ds = load("shapes-voxels", options={"n_per_class": 3, "num_points": 128, "resolution": 16})
    metrics = geometry_metrics(run, ds)
    assert 0.0 <= metrics["iou"] <= 1.0


@pytest.mark.slow
def test_points_run_figures(tmp_path: Path) -> None:
    run = _train(tmp_path, "shapes", {"n_per_class": 4, "num_points": 64}, figures=True,
                 options={"point_channels": [16, 32], "fold_hidden": [16, 16]})
    figures = Path(run.run_dir) / "figures"
    for name in ("reconstructions.png", "manifold.png", "manifold_0.png", "latent_pca_label.png"):
        assert (figures / name).stat().st_size > 1000
