"""Procedural 3D shapes with class labels, for tests and a quick demo (no files needed).

Classes (label = position in :data:`SHAPES`): sphere, box, cylinder, cone, torus, pyramid, octahedron.
Every shape gets random proportions and a random rotation about the up axis (z), and its surface is
sampled uniformly by area (analytic for the round shapes, area-weighted triangles for the polyhedra).

Registered datasets: ``shapes`` (points, (N, P, 3)) and ``shapes-voxels`` ((N, 1, R, R, R)); both take
the point options of :func:`nebula.data.points.prepare_clouds` (task, num_points, ...).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from nebula.data.base import NebulaDataset, register_dataset
from nebula.data.points import points_dataset, rotation_about_axis, sample_surface
from nebula.data.voxels import clouds_to_voxels
from nebula.errors import DataError

SHAPES = ("sphere", "box", "cylinder", "cone", "torus", "pyramid", "octahedron")


def _sphere(n: int, p: int, rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=(n, p, 3))
    radius = rng.uniform(0.7, 1.0, (n, 1, 1))
    return v / np.linalg.norm(v, axis=2, keepdims=True) * radius


def _round_solid(n: int, p: int, rng: np.random.Generator, cone: bool) -> np.ndarray:
    """Cylinder or cone (apex up) of radius r, height h: lateral surface + base (+ top cap) by area."""
    r = rng.uniform(0.4, 0.9, (n, 1))
    h = rng.uniform(0.8, 1.8, (n, 1))
    if cone:
        lateral = np.pi * r * np.sqrt(r**2 + h**2)
        caps = np.pi * r**2
    else:
        lateral = 2 * np.pi * r * h
        caps = 2 * np.pi * r**2
    on_side = rng.random((n, p)) < lateral / (lateral + caps)
    theta = rng.uniform(0, 2 * np.pi, (n, p))
    t = rng.random((n, p))
    if cone:
        # lateral: radius shrinks linearly with height; uniform by area -> height fraction 1 - sqrt(t)
        frac = 1 - np.sqrt(t)
        side_r, side_z = r * (1 - frac), h * frac
        cap_r, cap_z = r * np.sqrt(rng.random((n, p))), np.zeros((n, p))
    else:
        side_r, side_z = np.broadcast_to(r, (n, p)), h * t
        cap_r = r * np.sqrt(rng.random((n, p)))
        cap_z = np.where(rng.random((n, p)) < 0.5, 0.0, 1.0) * h
    rad = np.where(on_side, side_r, cap_r)
    z = np.where(on_side, side_z, cap_z) - h / 2
    return np.stack([rad * np.cos(theta), rad * np.sin(theta), z], axis=2)


def _torus(n: int, p: int, rng: np.random.Generator) -> np.ndarray:
    """Ring radius R, tube radius r; the tube angle is drawn with density proportional to R + r cos(phi)."""
    big = rng.uniform(0.6, 0.8, (n, 1))
    small = rng.uniform(0.15, 0.3, (n, 1))
    theta = rng.uniform(0, 2 * np.pi, (n, p))
    grid = np.linspace(0, 2 * np.pi, 256, endpoint=False)
    out = np.empty((n, p, 3))
    for i in range(n):
        w = big[i] + small[i] * np.cos(grid)
        phi = rng.choice(grid, size=p, p=w / w.sum()) + rng.uniform(0, 2 * np.pi / 256, p)
        ring = big[i] + small[i] * np.cos(phi)
        out[i] = np.stack([ring * np.cos(theta[i]), ring * np.sin(theta[i]), small[i] * np.sin(phi)], axis=1)
    return out


_BOX_FACES = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                       [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
_BOX_VERTS = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64)
_PYRAMID_VERTS = np.array([[-1, -1, -1], [1, -1, -1], [1, 1, -1], [-1, 1, -1], [0, 0, 1]], dtype=np.float64)
_PYRAMID_FACES = np.array([[0, 2, 1], [0, 3, 2], [0, 1, 4], [1, 2, 4], [2, 3, 4], [3, 0, 4]])
_OCTA_VERTS = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=np.float64)
_OCTA_FACES = np.array([[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]])


def _mesh(verts: np.ndarray, faces: np.ndarray, n: int, p: int, rng: np.random.Generator,
          low: float, high: float) -> np.ndarray:
    scales = rng.uniform(low, high, (n, 3))
    return np.stack([sample_surface(verts * s, faces, p, rng) for s in scales]).astype(np.float64)


def make_shapes(n_per_class: int = 100, num_points: int = 1024, classes: tuple[str, ...] | list[str] = SHAPES,
                seed: int = 0, noise: float = 0.0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Generate ``n_per_class`` clouds of each class: (N, num_points, 3) float32, labels (N,), class names.

    Each cloud is rotated by a random angle about z; ``noise`` adds Gaussian noise of that std.
    """
    unknown = [c for c in classes if c not in SHAPES]
    if unknown:
        raise DataError(f"shapes: unknown class(es) {unknown}; choose from {', '.join(SHAPES)}")
    if n_per_class < 1 or num_points < 1:
        raise DataError(f"shapes: n_per_class and num_points must be >= 1, found {n_per_class}, {num_points}")
    rng = np.random.default_rng(seed)
    parts, labels = [], []
    for k, name in enumerate(classes):
        n, p = n_per_class, num_points
        if name == "sphere":
            pts = _sphere(n, p, rng)
        elif name in ("cylinder", "cone"):
            pts = _round_solid(n, p, rng, cone=name == "cone")
        elif name == "torus":
            pts = _torus(n, p, rng)
        elif name == "box":
            pts = _mesh(_BOX_VERTS, _BOX_FACES, n, p, rng, 0.25, 0.9)
        elif name == "pyramid":
            pts = _mesh(_PYRAMID_VERTS, _PYRAMID_FACES, n, p, rng, 0.5, 0.9)
        else:
            pts = _mesh(_OCTA_VERTS, _OCTA_FACES, n, p, rng, 0.6, 1.0)
        parts.append(pts)
        labels.append(np.full(n, k))
    clouds = torch.from_numpy(np.concatenate(parts)).float()
    angles = torch.from_numpy(rng.uniform(0, 2 * np.pi, len(clouds))).float()
    clouds = clouds @ rotation_about_axis(angles, 2).transpose(1, 2)
    if noise > 0:
        clouds = clouds + torch.from_numpy(rng.normal(0, noise, clouds.shape)).float()
    return clouds.numpy(), np.concatenate(labels).astype(np.int64), list(classes)


def _shapes_dataset(build: Any, name: str, n_per_class: int, num_points: int, classes: list[str] | None, noise: float,
                    seed: int, **options: Any) -> NebulaDataset:
    """Procedural shapes turned into a dataset by ``build`` (points_dataset or clouds_to_voxels)."""
    clouds, y, names = make_shapes(n_per_class, num_points, tuple(classes or SHAPES), seed, noise)
    ds = build(clouds, y, None, name, class_names=names, num_points=num_points, seed=seed, **options)
    ds.meta["name"] = name
    return ds


@register_dataset("shapes")
def load_shapes(n_per_class: int = 100, num_points: int = 1024, classes: list[str] | None = None, noise: float = 0.0,
                seed: int = 0, **options: Any) -> NebulaDataset:
    """Procedural shapes as point clouds (N, num_points, 3), normalised to the unit sphere; no official split."""
    return _shapes_dataset(points_dataset, "shapes", n_per_class, num_points, classes, noise, seed, **options)


@register_dataset("shapes-voxels")
def load_shapes_voxels(n_per_class: int = 100, num_points: int = 1024, classes: list[str] | None = None, noise: float = 0.0,
                       seed: int = 0, **options: Any) -> NebulaDataset:
    """Procedural shapes voxelised to (N, 1, R, R, R) occupancy (options resolution=32, dilate=1, task, ...)."""
    return _shapes_dataset(clouds_to_voxels, "shapes-voxels", n_per_class, num_points, classes, noise, seed, **options)
