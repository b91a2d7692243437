"""Voxel grids: binvox read/write, voxelisation of point clouds, voxel datasets and completion.

Every loader returns ``x`` as (N, 1, R, R, R) float32 occupancy in {0, 1} (R = ``resolution``, 32 by
default); the completion task gives ``x`` = the voxelised partial cloud and ``target`` = the complete grid.

Voxelisation of a cloud normalised to the unit sphere maps [-1, 1]^3 onto the R^3 grid (voxel side 2/R)
and marks the voxel of every point; ``dilate`` (default 1) then applies that many 3x3x3 binary
dilations. Without it, 1,024 points mark a random ~750 of a shape's ~3,000 surface voxels and two
resamplings of the same shape agree at IoU 0.19 (ModelNet10, measured), so no model could reach a
useful IoU; one dilation closes the shell (resamplings agree at IoU 0.88).

Formats: binvox files, folders of ``.binvox`` (ModelNet-style or class folders), ``.npz``/``.npy``
voxel arrays, and every point-cloud folder layout of :mod:`nebula.data.points` (voxelised on load,
e.g. ``--modality voxels --data ModelNet10``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from nebula.data.base import NebulaDataset, peek_array, register_format
from nebula.data.points import (
    class_folder_root,
    load_cloud_folder,
    modelnet_root,
    prepare_clouds,
    scan_folder,
)
from nebula.errors import DataError

BINVOX_SUFFIXES = (".binvox",)


# =========================================================================== binvox
def read_binvox(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """binvox v1 -> occupancy (D, H, W) bool indexed [x, y, z], and {translate, scale}.

    The file stores run-length pairs (value, count) in x-z-y order (y fastest); the runs are expanded
    with one ``np.repeat`` and the grid transposed to x-y-z like binvox-rw.
    """
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    if not raw.startswith(b"#binvox"):
        raise DataError(f"{path}: not a binvox file (expected '#binvox 1' header, found {raw[:10]!r})")
    pos, dims, translate, scale = 0, None, [0.0, 0.0, 0.0], 1.0
    while True:
        end = raw.find(b"\n", pos)
        if end < 0:
            raise DataError(f"{path}: binvox header has no 'data' line")
        line = raw[pos:end].decode("ascii", "replace").strip()
        pos = end + 1
        if line.startswith("dim"):
            dims = [int(v) for v in line.split()[1:4]]
        elif line.startswith("translate"):
            translate = [float(v) for v in line.split()[1:4]]
        elif line.startswith("scale"):
            scale = float(line.split()[1])
        elif line == "data":
            break
    if dims is None or len(dims) != 3:
        raise DataError(f"{path}: binvox header has no 'dim D H W' line")
    runs = np.frombuffer(raw, dtype=np.uint8, offset=pos)
    if len(runs) % 2:
        raise DataError(f"{path}: binvox data has an odd number of bytes ({len(runs)}); expected (value, count) pairs")
    values, counts = runs[0::2], runs[1::2].astype(np.int64)
    total = int(np.prod(dims))
    if counts.sum() != total:
        raise DataError(f"{path}: binvox runs cover {int(counts.sum())} voxels, expected {total} for dim {dims}")
    flat = np.repeat(values.astype(bool), counts)
    grid = flat.reshape(dims[0], dims[2], dims[1]).transpose(0, 2, 1)
    return np.ascontiguousarray(grid), {"translate": translate, "scale": scale}


def write_binvox(path: Path, grid: np.ndarray, translate: tuple[float, float, float] = (0.0, 0.0, 0.0),
                 scale: float = 1.0) -> None:
    """Write an occupancy grid (D, H, W) indexed [x, y, z] as binvox v1 (run-length, runs <= 255)."""
    grid = np.asarray(grid).astype(bool)
    if grid.ndim != 3:
        raise DataError(f"{path}: binvox grids are 3-D, found shape {grid.shape}")
    flat = grid.transpose(0, 2, 1).reshape(-1).astype(np.uint8)
    change = np.flatnonzero(np.diff(flat)) + 1
    starts = np.concatenate([[0], change])
    lengths = np.diff(np.concatenate([starts, [len(flat)]]))
    values = flat[starts]
    # split runs longer than 255 into full chunks plus a remainder
    chunks = (lengths + 254) // 255
    run_values = np.repeat(values, chunks)
    run_lengths = np.full(int(chunks.sum()), 255, dtype=np.int64)
    last = np.cumsum(chunks) - 1
    run_lengths[last] = lengths - 255 * (chunks - 1)
    body = np.stack([run_values, run_lengths.astype(np.uint8)], axis=1).astype(np.uint8).tobytes()
    d, h, w = grid.shape
    header = (f"#binvox 1\ndim {d} {h} {w}\ntranslate {translate[0]:g} {translate[1]:g} {translate[2]:g}\n"
              f"scale {scale:g}\ndata\n").encode()
    Path(path).write_bytes(header + body)


# =========================================================================== voxelisation
def voxelize(points: torch.Tensor, resolution: int = 32, dilate: int = 1, chunk: int = 512) -> torch.Tensor:
    """Occupancy of clouds in [-1, 1]^3: points (N, P, 3) -> (N, 1, R, R, R) float32 in {0, 1}.

    Voxel index = clamp(floor((p + 1) / 2 * R), 0, R - 1) per axis (axis order x, y, z); ``dilate``
    3x3x3 max-pool passes follow (binary dilation). Memory O(chunk R^3).
    """
    r = int(resolution)
    out = []
    for s in range(0, len(points), chunk):
        p = points[s : s + chunk]
        idx = ((p + 1.0) * (r / 2.0)).floor().long().clamp(0, r - 1)
        flat = (idx[..., 0] * r + idx[..., 1]) * r + idx[..., 2]
        grid = torch.zeros(len(p), r**3, dtype=torch.uint8)
        grid.scatter_(1, flat, 1)
        grid = grid.view(len(p), 1, r, r, r)
        for _ in range(int(dilate)):
            grid = dilate3(grid)
        out.append(grid.float())
    return torch.cat(out) if out else torch.zeros(0, 1, r, r, r)


def dilate3(grid: torch.Tensor) -> torch.Tensor:
    """One 3x3x3 binary dilation of (N, C, D, H, W) grids, as separable 1-D maxima along each axis
    (the same result as a 3x3x3 max pool, several times faster on CPU)."""
    out = grid
    for axis in (2, 3, 4):
        n = out.shape[axis]
        new = out.clone()
        lo, hi = new.narrow(axis, 0, n - 1), new.narrow(axis, 1, n - 1)
        torch.maximum(hi, out.narrow(axis, 0, n - 1), out=hi)
        torch.maximum(lo, out.narrow(axis, 1, n - 1), out=lo)
        out = new
    return out


def voxel_centres(grid: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Centres in [-1, 1]^3 of the voxels of one grid (R, R, R) above ``threshold``: (K, 3)."""
    r = grid.shape[-1]
    idx = np.argwhere(grid > threshold)
    return (idx + 0.5) * (2.0 / r) - 1.0


def _voxel_dataset(x: torch.Tensor, target: torch.Tensor | None, y: np.ndarray | None, split: np.ndarray | None,
                   meta: dict[str, Any]) -> NebulaDataset:
    meta = {**meta, "modality": "voxels", "resolution": int(x.shape[-1])}
    return NebulaDataset(x=x.float().contiguous(), y=None if y is None else np.asarray(y, np.int64), split=split,
                         target=None if target is None else target.float().contiguous(), meta=meta)


def clouds_to_voxels(clouds: Any, y: np.ndarray | None, split: np.ndarray | None, source: str,
                     class_names: list[str] | None = None, resolution: int = 32, dilate: int = 1,
                     state: dict | None = None, **options: Any) -> NebulaDataset:
    """Point clouds -> voxel dataset via :func:`~nebula.data.points.prepare_clouds` (normalised to the
    unit sphere; ``task=complete`` voxelises the plane-cut partial cloud as input, the complete one as target)."""
    del state
    if resolution < 4:
        raise DataError(f"{source}: data option resolution must be >= 4, found {resolution}")
    options.setdefault("normalize", True)
    x_pts, target_pts, facts = prepare_clouds(clouds, source, **options)
    x = voxelize(x_pts, resolution, dilate)
    target = voxelize(target_pts, resolution, dilate) if target_pts is not None else None
    meta: dict[str, Any] = {**facts, "dilate": int(dilate), "voxelised_from": "points"}
    if class_names is not None:
        meta["class_names"] = class_names
    return _voxel_dataset(x, target, y, split, meta)


def grids_dataset(grids: np.ndarray, y: np.ndarray | None, split: np.ndarray | None, source: str,
                  class_names: list[str] | None = None, task: str = "reconstruct", missing: tuple[float, float] = (0.25, 0.5),
                  seed: int = 0, state: dict | None = None) -> NebulaDataset:
    """Occupancy grids (N, R, R, R) or (N, 1, R, R, R) -> voxel dataset; ``task=complete`` removes the
    occupied voxels beyond a seeded random plane through the grid (a fraction ~ U(missing) of them)."""
    del state
    g = np.asarray(grids)
    if g.ndim == 4:
        g = g[:, None]
    if g.ndim != 5 or g.shape[1] != 1 or len(set(g.shape[2:])) != 1:
        raise DataError(f"{source}: expected voxel grids (N, R, R, R) or (N, 1, R, R, R), found shape {tuple(np.asarray(grids).shape)}")
    x = torch.from_numpy((g > 0.5).astype(np.float32))
    meta: dict[str, Any] = {"task": task}
    if class_names is not None:
        meta["class_names"] = class_names
    if task == "reconstruct":
        return _voxel_dataset(x, None, y, split, meta)
    if task != "complete":
        raise DataError(f"{source}: data option task must be reconstruct or complete, found {task!r}")
    partial = plane_cut_grids(x, torch.Generator().manual_seed(seed), *missing)
    return _voxel_dataset(partial, x, y, split, {**meta, "missing": list(missing)})


def plane_cut_grids(grids: torch.Tensor, generator: torch.Generator, low: float = 0.25, high: float = 0.5) -> torch.Tensor:
    """Remove the occupied voxels of each grid (N, 1, R, R, R) whose centre lies beyond a random plane
    chosen so that a fraction f ~ U(low, high) of the occupied voxels goes (voxel completion input)."""
    n, r = len(grids), grids.shape[-1]
    axis = (torch.arange(r, dtype=torch.float32) + 0.5) * (2.0 / r) - 1.0
    cx, cy, cz = torch.meshgrid(axis, axis, axis, indexing="ij")
    centres = torch.stack([cx, cy, cz], -1).view(1, -1, 3)
    normal = torch.randn(n, 3, generator=generator)
    normal = normal / normal.norm(dim=1, keepdim=True)
    frac = low + (high - low) * torch.rand(n, generator=generator)
    height = (centres * normal.view(n, 1, 3)).sum(2)  # (N, R^3)
    occ = grids.view(n, -1) > 0.5
    masked = torch.where(occ, height, torch.full_like(height, -float("inf")))
    count = occ.sum(1)
    remove = torch.round(frac * count).long()
    sorted_h = masked.sort(1, descending=True).values
    cut = sorted_h.gather(1, (remove - 1).clamp_min(0).view(-1, 1))
    gone = occ & (height >= cut) & (remove.view(-1, 1) > 0)
    return (occ & ~gone).float().view_as(grids)


# =========================================================================== formats
def _binvox_tree(path: Path) -> bool:
    return path.is_dir() and (modelnet_root(path, BINVOX_SUFFIXES) is not None or class_folder_root(path, BINVOX_SUFFIXES))


@register_format("binvox-folder", "voxels", _binvox_tree, priority=8)
def load_binvox_folder(path: Path, resolution: int | None = None, **options: Any) -> NebulaDataset:
    """``root/<class>/[<split>/]<file>.binvox``; every grid must have the same size (or pass
    ``resolution`` to resample by nearest-neighbour pooling)."""
    files, y, split, classes = scan_folder(path, BINVOX_SUFFIXES)
    grids = [read_binvox(f)[0] for f in files]
    grids = [_resize(g, resolution, f) for g, f in zip(grids, files)] if resolution else grids
    shapes = {g.shape for g in grids}
    if len(shapes) != 1:
        raise DataError(f"{path}: binvox grids have different sizes {sorted(shapes)}; pass data option resolution=")
    ds = grids_dataset(np.stack(grids), y, split, str(path), class_names=classes, **options)
    ds.meta.update(name=path.name, files=len(files))
    return ds


@register_format("binvox", "voxels", lambda p: p.is_file() and p.suffix.lower() == ".binvox", priority=8)
def load_binvox_file(path: Path, **options: Any) -> NebulaDataset:
    """One ``.binvox`` file as a dataset of one grid."""
    grid, _ = read_binvox(path)
    return grids_dataset(grid[None], None, None, str(path), **options)


def _is_voxel_array(path: Path) -> bool:
    arr = peek_array(path)
    if arr is None or arr.ndim < 3:
        return False
    sides = arr.shape[-3:]
    return (arr.ndim == 4 or (arr.ndim == 5 and arr.shape[1] == 1)) and len(set(sides)) == 1 and sides[0] >= 8


@register_format("voxel-array", "voxels", _is_voxel_array, priority=7)
def load_voxel_array(path: Path, **options: Any) -> NebulaDataset:
    """``.npy`` (N, R, R, R) or ``.npz`` with ``x`` (N, [1,] R, R, R) occupancy, optional ``y``, ``split``."""
    y = split = None
    try:
        if path.suffix.lower() == ".npy":
            x = np.load(path, allow_pickle=False)
        else:
            with np.load(path, allow_pickle=False) as f:
                x = f["x"]
                y = f["y"] if "y" in f.files else None
                split = f["split"].astype(np.int8) if "split" in f.files else None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read voxel array ({exc})") from None
    return grids_dataset(x, y, split, str(path), **options)


@register_format("modelnet-voxels", "voxels", lambda p: modelnet_root(p) is not None, priority=19)
def load_modelnet_voxels(path: Path, **options: Any) -> NebulaDataset:
    """A ModelNet-layout point-cloud folder voxelised on load (options: resolution 32, dilate 1, and
    the point options of :func:`nebula.data.points.load_modelnet`)."""
    return load_cloud_folder(path, build=clouds_to_voxels, **options)


@register_format("point-folder-voxels", "voxels", class_folder_root, priority=2)
def load_point_folder_voxels(path: Path, **options: Any) -> NebulaDataset:
    """Plain class folders of point files, voxelised on load."""
    return load_cloud_folder(path, build=clouds_to_voxels, **options)


def _resize(grid: np.ndarray, resolution: int, path: Path) -> np.ndarray:
    side = grid.shape[0]
    if side == resolution:
        return grid
    if side % resolution:
        raise DataError(f"{path}: grid side {side} is not a multiple of resolution {resolution}")
    k = side // resolution
    t = torch.from_numpy(grid.astype(np.float32))[None, None]
    return (F.max_pool3d(t, k)[0, 0] > 0.5).numpy()

