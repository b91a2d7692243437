"""Point clouds: folder layouts, normalisation, sampling, augmentation, completion.

Every loader returns ``x`` as (N, P, 3) float32 clouds with a fixed point count P (``num_points``,
default 1,024), labels from class folders and, for the completion task, ``target`` = the complete cloud
while ``x`` is a partial one.

Formats
    * files: PCD (v0.7 ``ascii`` and ``binary``), PLY (``ascii``, ``binary_little_endian``,
      ``binary_big_endian``; vertices, or faces sampled as a mesh), XYZ/TXT/PTS (whitespace- or
      comma-separated rows, first three columns), NPY (P, 3), OFF meshes (area-weighted surface sampling);
    * arrays: ``.npy`` (N, P, 3) and ``.npz`` with ``x`` (N, P, 3), optional ``y`` and ``split``;
    * folders: ModelNet layout ``root/<class>/<train|test>/<file>`` (official split kept; found below
      single-child wrapper folders such as ``modelnet10/ModelNet10/pcd``) and plain class folders
      ``root/<class>/<file>`` (seeded stratified split).

Pre-processing, in order: read (meshes sampled with ``mesh_points`` surface points) -> fixed count
(``sampling`` = ``random`` without replacement, or ``fps`` farthest-point sampling; smaller clouds are
padded with random repeats) -> normalise (centre on the centroid, scale to the unit sphere:
max_i ||p_i|| = 1) -> seeded augmentation (rotation about the ``up_axis``, Gaussian jitter) ->
task (``complete``: a seeded random plane removes 25-50 % of the points of each cloud).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nebula.data.base import NebulaDataset, peek_array, register_format
from nebula.data.pointfiles import (  # noqa: F401 - re-exported: the readers and writers of point files
    MESH_SUFFIXES,
    POINT_SUFFIXES,
    load_npy,
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

SPLIT_NAMES = {"train": 0, "training": 0, "test": 1, "testing": 1, "val": 1, "valid": 1}
TASKS = ("reconstruct", "complete")


# =========================================================================== readers




# =========================================================================== writers


# =========================================================================== array operations
def normalize_clouds(points: torch.Tensor) -> torch.Tensor:
    """Centre each cloud on its centroid and scale it into the unit sphere.

    points: (N, P, 3) -> p' = (p - mean_i p_i) / max_i ||p_i - mean||  (max radius 1).
    """
    centred = points - points.mean(1, keepdim=True)
    radius = centred.norm(dim=2).amax(1).clamp_min(1e-12)
    return centred / radius.view(-1, 1, 1)


def farthest_point_sample(points: torch.Tensor, k: int, generator: torch.Generator | None = None,
                          chunk: int = 512) -> torch.Tensor:
    """Farthest-point sampling: points (N, P, 3) -> (N, k, 3), batched over N (k sequential steps).

    Starts at a random point per cloud; each step adds the point whose distance to the chosen set
    is largest. Memory O(N P).
    """
    n, p, _ = points.shape
    out = []
    for s in range(0, n, chunk):
        pts = points[s : s + chunk]
        b = len(pts)
        chosen = torch.empty(b, k, dtype=torch.long)
        far = torch.randint(0, p, (b,), generator=generator)
        best = torch.full((b, p), float("inf"))
        rows = torch.arange(b)
        for j in range(k):
            chosen[:, j] = far
            d = (pts - pts[rows, far].unsqueeze(1)).pow(2).sum(2)
            best = torch.minimum(best, d)
            far = best.argmax(1)
        out.append(pts[rows.unsqueeze(1), chosen])
    return torch.cat(out)


def fixed_count(cloud: np.ndarray, k: int, method: str, rng: np.random.Generator) -> np.ndarray:
    """One cloud (P, 3) -> (k, 3): random subset / farthest-point subset; P < k pads with random repeats."""
    p = len(cloud)
    if p == 0:
        raise DataError("empty point cloud")
    if p == k:
        return cloud
    if p < k:
        extra = rng.integers(0, p, k - p)
        return np.concatenate([cloud, cloud[extra]])
    if method == "fps":
        gen = torch.Generator().manual_seed(int(rng.integers(0, 2**31 - 1)))
        return farthest_point_sample(torch.from_numpy(cloud)[None], k, gen)[0].numpy()
    return cloud[rng.choice(p, k, replace=False)]


def rotation_about_axis(angles: torch.Tensor, axis: int) -> torch.Tensor:
    """Rotation matrices (N, 3, 3) by ``angles`` (N,) radians about coordinate ``axis`` (0=x, 1=y, 2=z)."""
    c, s = torch.cos(angles), torch.sin(angles)
    i, j = [a for a in range(3) if a != axis]
    rot = torch.zeros(len(angles), 3, 3, dtype=angles.dtype)
    rot[:, axis, axis] = 1.0
    rot[:, i, i], rot[:, i, j], rot[:, j, i], rot[:, j, j] = c, -s, s, c
    return rot


def augment_clouds(points: torch.Tensor, generator: torch.Generator, rotate: bool = True, jitter: float = 0.0,
                   up_axis: int = 2, clip: float = 0.05) -> torch.Tensor:
    """Seeded augmentation of (N, P, 3) clouds: a uniform random rotation about the up axis per cloud,
    then Gaussian jitter N(0, jitter^2) per coordinate clipped to +-clip."""
    out = points
    if rotate:
        angles = torch.rand(len(points), generator=generator, dtype=points.dtype) * (2 * torch.pi)
        out = out @ rotation_about_axis(angles, up_axis).transpose(1, 2)
    if jitter > 0:
        noise = torch.randn(out.shape, generator=generator, dtype=out.dtype) * jitter
        out = out + noise.clamp(-clip, clip)
    return out


def plane_cut(points: torch.Tensor, generator: torch.Generator, low: float = 0.25, high: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Completion inputs: a random plane removes a fraction f ~ U(low, high) of each cloud.

    For each cloud a unit normal n is drawn uniformly on the sphere; the round(f P) points with the
    largest p.n are removed (the half-space beyond the plane). The K = P - round(f P) kept points fill
    the first K of P slots (in random order) and the remaining slots repeat random kept points, so the
    partial cloud has the same fixed count P (repeats do not change its set of points).

    points: (N, P, 3). Returns partial (N, P, 3) and kept (N,) int64 counts K.
    """
    n, p, _ = points.shape
    normal = torch.randn(n, 3, generator=generator, dtype=points.dtype)
    normal = normal / normal.norm(dim=1, keepdim=True).clamp_min(1e-12)
    frac = low + (high - low) * torch.rand(n, generator=generator, dtype=points.dtype)
    kept = (p - torch.round(frac * p)).long().clamp(1, p)
    height = (points * normal.unsqueeze(1)).sum(2)
    # kept points are the K lowest along the normal; shuffle them by sorting on (rank < K, random key)
    order = height.argsort(1)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(p).expand(n, p).contiguous())
    key = torch.rand(n, p, generator=generator) + (rank >= kept.unsqueeze(1)).float() * 2.0
    perm = key.argsort(1)
    slot = torch.arange(p).expand(n, p)
    repeat = (torch.rand(n, p, generator=generator) * kept.unsqueeze(1)).long()
    src = torch.where(slot < kept.unsqueeze(1), slot, repeat)
    index = perm.gather(1, src)
    partial = points.gather(1, index.unsqueeze(2).expand(n, p, 3))
    return partial, kept


# =========================================================================== dataset assembly
def _axis(up_axis: str | int) -> int:
    if isinstance(up_axis, int) and up_axis in (0, 1, 2):
        return up_axis
    names = {"x": 0, "y": 1, "z": 2}
    if str(up_axis).lower() not in names:
        raise DataError(f"data option up_axis: expected x, y or z, found {up_axis!r}")
    return names[str(up_axis).lower()]


def prepare_clouds(
    clouds: Sequence[np.ndarray] | np.ndarray,
    source: str,
    num_points: int = 1024,
    sampling: str = "random",
    normalize: bool = True,
    rotate: bool = False,
    jitter: float = 0.0,
    up_axis: str | int = "z",
    task: str = "reconstruct",
    missing: Sequence[float] = (0.25, 0.5),
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, Any]]:
    """Clouds of any sizes -> (x, target, facts): fixed count, normalised, augmented, task applied.

    Returns x (N, num_points, 3) float32, target (N, num_points, 3) for ``task=complete`` (else None)
    and a dict of facts for ``meta``. Everything random is drawn from ``seed``.
    """
    if sampling not in ("random", "fps"):
        raise DataError(f"{source}: data option sampling must be random or fps, found {sampling!r}")
    if task not in TASKS:
        raise DataError(f"{source}: data option task must be one of {', '.join(TASKS)}, found {task!r}")
    low, high = (float(v) for v in missing)
    if not 0.0 <= low <= high < 1.0:
        raise DataError(f"{source}: data option missing must be [low, high] with 0 <= low <= high < 1, found {list(missing)}")
    rng = np.random.default_rng(seed)
    if isinstance(clouds, np.ndarray) and clouds.ndim == 3 and clouds.shape[1] == num_points and sampling == "random":
        arr = clouds.astype(np.float32, copy=False)
    elif isinstance(clouds, np.ndarray) and clouds.ndim == 3 and clouds.shape[1] > num_points and sampling == "fps":
        gen = torch.Generator().manual_seed(seed)
        arr = farthest_point_sample(torch.from_numpy(clouds.astype(np.float32)), num_points, gen).numpy()
    else:
        arr = np.stack([fixed_count(np.asarray(c, np.float32), num_points, sampling, rng) for c in clouds])
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).reshape(len(arr), -1).any(1).sum())
        raise DataError(f"{source}: {bad} clouds contain NaN or inf coordinates (expected finite numbers)")
    x = torch.from_numpy(np.ascontiguousarray(arr))
    if normalize:
        x = normalize_clouds(x)
    gen = torch.Generator().manual_seed(seed)
    if rotate or jitter > 0:
        x = augment_clouds(x, gen, rotate, float(jitter), _axis(up_axis))
    target = None
    facts: dict[str, Any] = {"num_points": num_points, "sampling": sampling, "normalize": "unit_sphere" if normalize else "none",
                             "task": task}
    if task == "complete":
        target = x
        x, kept = plane_cut(x, gen, low, high)
        facts["kept_fraction_mean"] = float(kept.float().mean() / num_points)
        facts["missing"] = [low, high]
    return x.float().contiguous(), None if target is None else target.float().contiguous(), facts


def points_dataset(clouds: Sequence[np.ndarray] | np.ndarray, y: np.ndarray | None, split: np.ndarray | None, source: str,
                   class_names: list[str] | None = None, state: dict | None = None, **options: Any) -> NebulaDataset:
    """A points :class:`NebulaDataset` from raw clouds (see :func:`prepare_clouds` for ``options``)."""
    del state  # point loaders need no vocabulary-like state; accepted so runs can hand it back
    x, target, facts = prepare_clouds(clouds, source, **options)
    meta: dict[str, Any] = {"modality": "points", **facts}
    if class_names is not None:
        meta["class_names"] = class_names
    return NebulaDataset(x=x, y=None if y is None else np.asarray(y, np.int64), split=split, target=target, meta=meta)


# =========================================================================== folder layouts
def _point_files(folder: Path, suffixes: Sequence[str]) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes and _sniff(p))


def _sniff(path: Path) -> bool:
    """Cheap check that a .txt/.xyz/.pts file holds numeric rows (so text corpora are not mistaken for points)."""
    if path.suffix.lower() not in (".txt", ".xyz", ".pts"):
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(512).decode("utf-8", "replace")
    except OSError:
        return False
    for line in head.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            values = re.split(r"[\s,]+", line)
            try:
                return len(values) >= 3 and all(np.isfinite(float(v)) for v in values)
            except ValueError:
                return False
    return False


def _subdirs(path: Path) -> list[Path]:
    return sorted(d for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))


def modelnet_root(path: Path, suffixes: Sequence[str] = POINT_SUFFIXES, depth: int = 4) -> Path | None:
    """The folder holding ``<class>/<train|test>/<files>`` at or below ``path`` (through folders that
    have exactly one sub-folder, e.g. ``modelnet10/ModelNet10/pcd``), or None."""
    for _ in range(depth + 1):
        if not path.is_dir():
            return None
        subs = _subdirs(path)
        if subs and all(any(s.name.lower() in SPLIT_NAMES for s in _subdirs(c)) for c in subs):
            first = next(s for s in _subdirs(subs[0]) if s.name.lower() in SPLIT_NAMES)
            if _has_files(first, suffixes):
                return path
            return None
        if len(subs) != 1:
            return None
        path = subs[0]
    return None


def class_folder_root(path: Path, suffixes: Sequence[str] = POINT_SUFFIXES) -> bool:
    """True when ``path`` holds ``<class>/<file>`` with files of ``suffixes`` (plain class folders)."""
    return path.is_dir() and any(_has_files(d, suffixes) for d in _subdirs(path))


def _has_files(folder: Path, suffixes: Sequence[str]) -> bool:
    for p in folder.iterdir():
        if p.is_file() and p.suffix.lower() in suffixes:
            return _sniff(p)
    return False


def scan_folder(path: Path, suffixes: Sequence[str]) -> tuple[list[Path], np.ndarray, np.ndarray | None, list[str]]:
    """Files, labels (N,), split (N,) or None and class names of a ModelNet-style or class-folder tree."""
    root = modelnet_root(path, suffixes)
    files: list[Path] = []
    labels: list[int] = []
    splits: list[int] = []
    if root is not None:
        classes = _subdirs(root)
        for k, c in enumerate(classes):
            for s in _subdirs(c):
                if s.name.lower() in SPLIT_NAMES:
                    found = _point_files(s, suffixes)
                    files += found
                    labels += [k] * len(found)
                    splits += [SPLIT_NAMES[s.name.lower()]] * len(found)
        split = np.asarray(splits, np.int8) if len(set(splits)) == 2 else None
    else:
        classes = [d for d in _subdirs(path) if _has_files(d, suffixes)]
        for k, c in enumerate(classes):
            found = _point_files(c, suffixes)
            files += found
            labels += [k] * len(found)
        split = None
    if not files:
        raise DataError(f"{path}: no point files ({', '.join(suffixes)}) in <class>/[<split>/] folders")
    return files, np.asarray(labels, np.int64), split, [c.name for c in classes]


def read_files(files: Sequence[Path], mesh_points: int, seed: int) -> list[np.ndarray] | np.ndarray:
    """Read many point files; equal-sized clouds come back as one (N, P, 3) array."""
    rng = np.random.default_rng(seed)
    clouds = [read_point_file(f, mesh_points, rng) for f in files]
    for f, c in zip(files, clouds):
        if len(c) == 0:
            raise DataError(f"{f}: point file holds no points")
    sizes = {len(c) for c in clouds}
    return np.stack(clouds) if len(sizes) == 1 else clouds


def load_cloud_folder(path: Path, build: Any = None, num_points: int = 1024, mesh_points: int = 4096, seed: int = 0,
                      **options: Any) -> NebulaDataset:
    """A class-folder tree of point files (ModelNet layout or plain) read into clouds and turned into a
    dataset by ``build(clouds, y, split, source, class_names=, num_points=, seed=, **options)``
    (default :func:`points_dataset`; the voxel loaders pass their voxeliser)."""
    files, y, split, classes = scan_folder(path, POINT_SUFFIXES)
    clouds = read_files(files, mesh_points, seed)
    build = points_dataset if build is None else build
    ds = build(clouds, y, split, str(path), class_names=classes, num_points=num_points, seed=seed, **options)
    ds.meta.update(name=path.name, files=len(files))
    return ds


@register_format("modelnet", "points", lambda p: modelnet_root(p) is not None, priority=20)
def load_modelnet(path: Path, **options: Any) -> NebulaDataset:
    """ModelNet layout ``root/<class>/<train|test>/<file>`` (official split kept when both exist).

    Options: num_points (1024), sampling (random|fps), normalize (true), rotate (false), jitter (0),
    up_axis (z), task (reconstruct|complete), missing ([0.25, 0.5]), mesh_points (4096), seed (0).
    """
    return load_cloud_folder(path, **options)


@register_format("point-folder", "points", class_folder_root, priority=3)
def load_point_folder(path: Path, **options: Any) -> NebulaDataset:
    """Plain class folders ``root/<class>/<file>`` of point files; labels in sorted folder order."""
    return load_cloud_folder(path, **options)


def _is_point_file(path: Path) -> bool:
    if not path.is_file() or path.suffix.lower() not in POINT_SUFFIXES:
        return False
    if path.suffix.lower() == ".npy":
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError):
            return False
        return arr.ndim == 2 and arr.shape[1] == 3
    return _sniff(path)


# priority 5: above the text formats' sniffers (a tab-separated numeric row also looks like "label<TAB>text")
@register_format("point-file", "points", _is_point_file, priority=5)
def load_point_file(path: Path, mesh_points: int = 4096, seed: int = 0, **options: Any) -> NebulaDataset:
    """One point file (PCD, PLY, XYZ/TXT, NPY (P, 3), OFF) as a dataset of one cloud."""
    cloud = read_point_file(path, mesh_points, np.random.default_rng(seed))
    return points_dataset([cloud], None, None, str(path), seed=seed, **options)


def _is_point_array(path: Path) -> bool:
    arr = peek_array(path)
    return arr is not None and arr.ndim == 3 and arr.shape[2] == 3 and arr.shape[1] > 4 and np.issubdtype(arr.dtype, np.floating)


@register_format("point-array", "points", _is_point_array, priority=6)
def load_point_array(path: Path, **options: Any) -> NebulaDataset:
    """``.npy`` (N, P, 3) or ``.npz`` with ``x`` (N, P, 3) float, optional ``y`` (N,), ``split`` (N,)
    and ``class_names``."""
    y = split = names = None
    if path.suffix.lower() == ".npy":
        x = load_npy(path)
    else:
        with np.load(path, allow_pickle=False) as f:
            x = f["x"]
            y = f["y"] if "y" in f.files else None
            split = f["split"].astype(np.int8) if "split" in f.files else None
            names = [str(c) for c in f["class_names"]] if "class_names" in f.files else None
    for key, arr in (("y", y), ("split", split)):
        if arr is not None and len(arr) != len(x):
            raise DataError(f"{path}: '{key}' has {len(arr)} entries for {len(x)} clouds")
    return points_dataset(x, y, split, str(path), class_names=names, **options)


# =========================================================================== helpers


