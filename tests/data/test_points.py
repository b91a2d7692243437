"""Point-cloud readers, folder layouts and pre-processing on generated files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from nebula.data import detect_format, load
from nebula.data.points import (
    augment_clouds,
    farthest_point_sample,
    fixed_count,
    normalize_clouds,
    plane_cut,
    read_off,
    read_pcd,
    read_ply,
    read_point_file,
    read_xyz,
    sample_surface,
    write_pcd,
    write_ply,
)
from nebula.errors import DataError

CUBE_V = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float32)
CUBE_F = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                   [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])


@pytest.fixture
def cloud() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)


@pytest.mark.parametrize("binary", [True, False])
def test_pcd_round_trip(tmp_path: Path, cloud: np.ndarray, binary: bool) -> None:
    write_pcd(tmp_path / "a.pcd", cloud, binary=binary)
    np.testing.assert_allclose(read_pcd(tmp_path / "a.pcd"), cloud, rtol=1e-6, atol=1e-6)


def test_pcd_binary_with_extra_fields(tmp_path: Path) -> None:
    rec = np.zeros(4, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("rgb", "<u4")])
    rec["x"], rec["y"], rec["z"], rec["rgb"] = [1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], 7
    header = "VERSION 0.7\nFIELDS x y z rgb\nSIZE 4 4 4 4\nTYPE F F F U\nCOUNT 1 1 1 1\nWIDTH 4\nHEIGHT 1\nPOINTS 4\nDATA binary\n"
    (tmp_path / "c.pcd").write_bytes(header.encode() + rec.tobytes())
    np.testing.assert_array_equal(read_pcd(tmp_path / "c.pcd")[:, 2], [9, 10, 11, 12])


def test_pcd_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.pcd").write_text("VERSION 0.7\nFIELDS x y\nDATA ascii\n1 2\n")
    with pytest.raises(DataError, match="x y z"):
        read_pcd(tmp_path / "bad.pcd")
    (tmp_path / "short.pcd").write_bytes(b"FIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nPOINTS 10\nDATA binary\n" + b"\0" * 12)
    with pytest.raises(DataError, match="expected 120"):
        read_pcd(tmp_path / "short.pcd")


@pytest.mark.parametrize("binary", [True, False])
def test_ply_round_trip_points_and_mesh(tmp_path: Path, cloud: np.ndarray, binary: bool) -> None:
    write_ply(tmp_path / "a.ply", cloud, binary=binary)
    v, f = read_ply(tmp_path / "a.ply")
    np.testing.assert_allclose(v, cloud, rtol=1e-6, atol=1e-6)
    assert f is None
    write_ply(tmp_path / "m.ply", CUBE_V, binary=binary, faces=CUBE_F)
    v, f = read_ply(tmp_path / "m.ply")
    np.testing.assert_array_equal(f, CUBE_F)
    pts = read_point_file(tmp_path / "m.ply", mesh_points=300)
    assert pts.shape == (300, 3)
    np.testing.assert_allclose(np.abs(pts).max(1), 1.0, atol=1e-5)  # every sample lies on a cube face


def test_xyz_txt_npy(tmp_path: Path, cloud: np.ndarray) -> None:
    np.savetxt(tmp_path / "a.xyz", cloud)
    np.savetxt(tmp_path / "b.txt", np.hstack([cloud, cloud]), delimiter=",", header="x,y,z,nx,ny,nz")
    np.save(tmp_path / "c.npy", cloud)
    for name in ("a.xyz", "b.txt", "c.npy"):
        np.testing.assert_allclose(read_point_file(tmp_path / name), cloud, rtol=1e-5, atol=1e-6)
    (tmp_path / "ragged.xyz").write_text("1 2 3\n4 5\n")
    with pytest.raises(DataError, match="same number"):
        read_xyz(tmp_path / "ragged.xyz")


def test_off_with_modelnet_header_and_polygons(tmp_path: Path) -> None:
    lines = ["OFF8 6 0"] + [" ".join(map(str, v)) for v in CUBE_V]
    quads = [[0, 1, 3, 2], [4, 6, 7, 5], [0, 4, 5, 1], [2, 3, 7, 6], [0, 2, 6, 4], [1, 5, 7, 3]]
    lines += ["4 " + " ".join(map(str, q)) for q in quads]
    (tmp_path / "cube.off").write_text("\n".join(lines) + "\n")
    v, f = read_off(tmp_path / "cube.off")
    assert v.shape == (8, 3) and f.shape == (12, 3)
    pts = read_point_file(tmp_path / "cube.off", mesh_points=2000)
    np.testing.assert_allclose(np.abs(pts).max(1), 1.0, atol=1e-5)
    # area weighting: each of the 6 equal faces gets ~1/6 of the points
    face = np.argmax(np.abs(pts), 1) * 2 + (pts[np.arange(len(pts)), np.argmax(np.abs(pts), 1)] > 0)
    counts = np.bincount(face, minlength=6)
    assert counts.min() > 2000 / 6 * 0.7


def test_sample_surface_area_weighted() -> None:
    big = np.array([[0, 0, 0], [10, 0, 0], [0, 10, 0], [0, 0, 5], [1, 0, 5], [0, 1, 5]], dtype=np.float64)
    faces = np.array([[0, 1, 2], [3, 4, 5]])  # areas 50 and 0.5
    pts = sample_surface(big, faces, 5000, np.random.default_rng(0))
    share_small = (pts[:, 2] > 1).mean()
    assert 0.0 < share_small < 0.03


def test_normalize_fps_fixed_count() -> None:
    g = torch.Generator().manual_seed(0)
    pts = torch.randn(3, 100, 3) * 5 + 7
    n = normalize_clouds(pts)
    torch.testing.assert_close(n.mean(1), torch.zeros(3, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(n.norm(dim=2).amax(1), torch.ones(3))
    line = torch.linspace(0, 1, 11).view(1, 11, 1) * torch.tensor([1.0, 0, 0])
    chosen = farthest_point_sample(line, 3, g)[0, :, 0].sort().values
    torch.testing.assert_close(chosen, torch.tensor([0.0, 0.5, 1.0]))
    rng = np.random.default_rng(0)
    small = np.arange(12, dtype=np.float32).reshape(4, 3)
    padded = fixed_count(small, 10, "random", rng)
    assert padded.shape == (10, 3) and {tuple(p) for p in padded} == {tuple(p) for p in small}
    assert fixed_count(np.random.rand(50, 3).astype(np.float32), 8, "fps", rng).shape == (8, 3)


def test_augment_is_seeded_and_rotates_about_up_axis() -> None:
    pts = torch.randn(4, 30, 3)
    a = augment_clouds(pts, torch.Generator().manual_seed(1), rotate=True)
    b = augment_clouds(pts, torch.Generator().manual_seed(1), rotate=True)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a[..., 2], pts[..., 2])
    torch.testing.assert_close(a.norm(dim=2), pts.norm(dim=2))
    assert not torch.allclose(a, pts)
    j = augment_clouds(pts, torch.Generator().manual_seed(1), rotate=False, jitter=0.01)
    assert 0 < (j - pts).abs().max() <= 0.05


def test_plane_cut_removes_a_half_space() -> None:
    pts = normalize_clouds(torch.randn(20, 200, 3))
    partial, kept = plane_cut(pts, torch.Generator().manual_seed(0))
    assert partial.shape == pts.shape
    frac = 1 - kept.float() / 200
    assert (frac >= 0.25 - 1e-6).all() and (frac <= 0.5 + 1e-6).all()
    for i in range(20):
        orig = {tuple(p) for p in pts[i].tolist()}
        part = {tuple(p) for p in partial[i].tolist()}
        assert part <= orig and len(part) == int(kept[i])


def _modelnet_tree(root: Path, suffix: str = ".pcd", splits=("train", "test")) -> None:
    rng = np.random.default_rng(0)
    for c in ("chair", "table"):
        for s in splits:
            folder = root / "ModelNetX" / c / s
            folder.mkdir(parents=True)
            for i in range(4):
                pts = rng.normal(size=(80, 3)) * ([1, 2, 3] if c == "chair" else [3, 1, 1])
                if suffix == ".pcd":
                    write_pcd(folder / f"{c}_{i}.pcd", pts)
                else:
                    np.savetxt(folder / f"{c}_{i}.txt", pts, delimiter=",")


def test_modelnet_folder_official_split(tmp_path: Path) -> None:
    _modelnet_tree(tmp_path)
    assert detect_format(tmp_path).name == "modelnet"
    ds = load(tmp_path, options={"num_points": 64})
    assert ds.x.shape == (16, 64, 3) and ds.modality == "points"
    assert ds.meta["split_kind"] == "official" and ds.split.sum() == 8
    assert ds.meta["class_names"] == ["chair", "table"]
    torch.testing.assert_close(ds.x.norm(dim=2).amax(1), torch.ones(16))


def test_modelnet_train_only_gets_seeded_split_and_completion(tmp_path: Path) -> None:
    _modelnet_tree(tmp_path, ".txt", splits=("train",))
    ds = load(tmp_path, options={"num_points": 64, "task": "complete", "sampling": "fps"}, test_fraction=0.25)
    assert ds.meta["split_kind"].startswith("stratified")
    assert ds.target is not None and ds.target.shape == ds.x.shape
    again = load(tmp_path, options={"num_points": 64, "task": "complete", "sampling": "fps"}, test_fraction=0.25)
    torch.testing.assert_close(ds.x, again.x)


def test_class_folders_and_no_clash_with_images_or_text(tmp_path: Path) -> None:
    from PIL import Image

    pts = tmp_path / "pts"
    for c in ("a", "b"):
        (pts / c).mkdir(parents=True)
        for i in range(3):
            np.savetxt(pts / c / f"{i}.xyz", np.random.rand(20, 3))
    assert detect_format(pts).name == "point-folder"
    assert load(pts, options={"num_points": 16}).x.shape == (6, 16, 3)
    img = tmp_path / "img"
    for c in ("a", "b"):
        (img / c).mkdir(parents=True)
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(img / c / "0.png")
    assert detect_format(img).modality == "image"
    words = tmp_path / "words"
    for c in ("a", "b"):
        (words / c).mkdir(parents=True)
        (words / c / "0.txt").write_text("hello world, these are words\n")
    with pytest.raises(DataError):
        detect_format(words, "points")


def test_point_arrays_and_bad_options(tmp_path: Path) -> None:
    x = np.random.rand(6, 40, 3).astype(np.float32)
    np.savez(tmp_path / "c.npz", x=x, y=np.array([0, 1] * 3))
    assert detect_format(tmp_path / "c.npz").name == "point-array"
    ds = load(tmp_path / "c.npz", options={"num_points": 40})
    assert ds.x.shape == (6, 40, 3) and ds.num_classes == 2
    with pytest.raises(DataError, match="task"):
        load(tmp_path / "c.npz", options={"task": "denoise"})
    with pytest.raises(DataError, match="does not take"):
        load(tmp_path / "c.npz", options={"colour": True})


def test_shapes_dataset() -> None:
    ds = load("shapes", options={"n_per_class": 4, "num_points": 64})
    assert ds.x.shape == (28, 64, 3) and ds.num_classes == 7 and ds.modality == "points"
    torch.testing.assert_close(ds.x.norm(dim=2).amax(1), torch.ones(28))


def test_single_point_files_win_over_text_sniffers(tmp_path: Path) -> None:
    (tmp_path / "tabs.txt").write_text("0.1\t0.2\t0.3\n0.4\t0.5\t0.6\n0.7\t0.8\t0.9\n")
    assert detect_format(tmp_path / "tabs.txt").name == "point-file"
    ds = load(tmp_path / "tabs.txt", options={"num_points": 3, "normalize": False})
    torch.testing.assert_close(ds.x[0, :, 0].sort().values, torch.tensor([0.1, 0.4, 0.7]))
