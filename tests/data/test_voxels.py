"""binvox read/write, voxelisation and voxel datasets on generated data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nebula.data import detect_format, load
from nebula.data.points import write_pcd
from nebula.data.voxels import dilate3, plane_cut_grids, read_binvox, voxelize, write_binvox
from nebula.errors import DataError


@pytest.mark.parametrize("shape", [(8, 10, 12), (32, 32, 32)])
def test_binvox_round_trip(tmp_path: Path, shape: tuple[int, int, int]) -> None:
    rng = np.random.default_rng(0)
    grid = rng.random(shape) < 0.3
    grid[:, :2] = False  # long runs (> 255) of zeros
    write_binvox(tmp_path / "g.binvox", grid, translate=(0.5, -1, 2), scale=3.0)
    back, info = read_binvox(tmp_path / "g.binvox")
    np.testing.assert_array_equal(back, grid)
    assert info == {"translate": [0.5, -1.0, 2.0], "scale": 3.0}


def test_binvox_known_bytes(tmp_path: Path) -> None:
    # 2x2x2 grid, runs in x-z-y order (y fastest): voxel [x=0, y=1, z=0] is the second value
    (tmp_path / "k.binvox").write_bytes(b"#binvox 1\ndim 2 2 2\ntranslate 0 0 0\nscale 1\ndata\n" + bytes([0, 1, 1, 1, 0, 6]))
    grid, _ = read_binvox(tmp_path / "k.binvox")
    expected = np.zeros((2, 2, 2), bool)
    expected[0, 1, 0] = True
    np.testing.assert_array_equal(grid, expected)
    (tmp_path / "bad.binvox").write_bytes(b"#binvox 1\ndim 2 2 2\ndata\n" + bytes([0, 5]))
    with pytest.raises(DataError, match="cover 5 voxels"):
        read_binvox(tmp_path / "bad.binvox")


def test_voxelize_indices_and_dilation() -> None:
    pts = torch.tensor([[[-1.0, -1.0, -1.0], [0.99, 0.0, -0.01], [0.99, 0.0, -0.01]]])
    grid = voxelize(pts, resolution=4, dilate=0)
    assert grid.shape == (1, 1, 4, 4, 4) and grid.sum() == 2
    assert grid[0, 0, 0, 0, 0] == 1 and grid[0, 0, 3, 2, 1] == 1
    g = (torch.rand(3, 1, 9, 9, 9) > 0.95).float()
    torch.testing.assert_close(dilate3(g), F.max_pool3d(g, 3, 1, 1))
    assert voxelize(pts, 4, dilate=1).sum() > grid.sum()


def test_plane_cut_grids_removes_part_of_the_shape() -> None:
    g = (torch.rand(10, 1, 12, 12, 12) > 0.7).float()
    cut = plane_cut_grids(g, torch.Generator().manual_seed(0))
    assert (cut <= g).all()
    frac = 1 - cut.flatten(1).sum(1) / g.flatten(1).sum(1)
    assert (frac > 0.2).all() and (frac < 0.55).all()


def test_voxel_formats(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        for s in ("train", "test"):
            (tmp_path / "bv" / c / s).mkdir(parents=True)
            for i in range(2):
                write_binvox(tmp_path / "bv" / c / s / f"{i}.binvox", rng.random((16, 16, 16)) < 0.2)
    assert detect_format(tmp_path / "bv").name == "binvox-folder"
    ds = load(tmp_path / "bv")
    assert ds.x.shape == (8, 1, 16, 16, 16) and ds.modality == "voxels" and ds.meta["split_kind"] == "official"
    comp = load(tmp_path / "bv", options={"task": "complete"})
    assert (comp.x <= comp.target).all() and comp.x.sum() < comp.target.sum()
    np.savez(tmp_path / "v.npz", x=(rng.random((5, 16, 16, 16)) < 0.2), y=np.arange(5) % 2)
    assert detect_format(tmp_path / "v.npz").name == "voxel-array"
    assert load(tmp_path / "v.npz").x.shape == (5, 1, 16, 16, 16)


def test_point_folders_voxelised_with_modality(tmp_path: Path) -> None:
    for c in ("a", "b"):
        for s in ("train", "test"):
            (tmp_path / "m" / c / s).mkdir(parents=True)
            for i in range(2):
                write_pcd(tmp_path / "m" / c / s / f"{i}.pcd", np.random.rand(100, 3))
    assert detect_format(tmp_path / "m").name == "modelnet"
    assert detect_format(tmp_path / "m", "voxels").name == "modelnet-voxels"
    ds = load(tmp_path / "m", modality="voxels", options={"resolution": 16, "num_points": 64, "task": "complete"})
    assert ds.x.shape == (8, 1, 16, 16, 16) and ds.target.shape == ds.x.shape
    assert set(ds.x.unique().tolist()) <= {0.0, 1.0}


def test_shapes_voxels() -> None:
    ds = load("shapes-voxels", options={"n_per_class": 2, "num_points": 128, "resolution": 16})
    assert ds.x.shape == (14, 1, 16, 16, 16) and ds.modality == "voxels" and ds.x.sum() > 0
