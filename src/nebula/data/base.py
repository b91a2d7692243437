"""The in-memory dataset every loader returns, the split helper, and the records of loaders (formats,
named datasets) with their registration.

Data is kept as one tensor so batches are index slices (no per-sample Python in the hot path).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from nebula.errors import DataError
from nebula.registry import register


@dataclass
class NebulaDataset:
    """Samples, optional labels and the train/test split.

    Attributes:
        x: (N, ...) model input. Images (N, C, H, W) float32 in [0, 1]; point clouds (N, P, 3) float32;
            voxels (N, 1, D, D, D) float32 occupancy; text (N, L) int64 token ids.
        y: (N,) int64 labels, or None when the data has none.
        split: (N,) int8, 0 = train, 1 = test; None from a loader means "no official split".
        target: (N, ...) reconstruction target when it differs from ``x`` (e.g. completion); else None.
        meta: name, modality, source path, class names and loader-specific facts.
    """

    x: torch.Tensor
    y: np.ndarray | None
    split: np.ndarray | None
    target: torch.Tensor | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def modality(self) -> str:
        return str(self.meta.get("modality", "image"))

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    @property
    def target_shape(self) -> tuple[int, ...]:
        return tuple((self.target if self.target is not None else self.x).shape[1:])

    @property
    def num_classes(self) -> int:
        if self.y is None:
            return 0
        return int(len(np.unique(self.y[self.y >= 0])))

    def subset(self, index: np.ndarray) -> NebulaDataset:
        """The samples at ``index`` (a copy of the metadata)."""
        idx = torch.as_tensor(np.asarray(index), dtype=torch.long)
        return NebulaDataset(
            x=self.x[idx],
            y=None if self.y is None else self.y[np.asarray(index)],
            split=None if self.split is None else self.split[np.asarray(index)],
            target=None if self.target is None else self.target[idx],
            meta=dict(self.meta),
        )

    def check(self, source: str) -> NebulaDataset:
        """Validate shapes and values; raise :class:`DataError` naming ``source``."""
        n = len(self)
        if n == 0:
            raise DataError(f"{source}: dataset is empty (expected at least 1 sample, found 0)")
        if self.y is not None and len(self.y) != n:
            raise DataError(f"{source}: {len(self.y)} labels for {n} samples (expected one label per sample)")
        if self.split is not None and len(self.split) != n:
            raise DataError(f"{source}: split has {len(self.split)} entries for {n} samples")
        for name, t in (("x", self.x), ("target", self.target)):
            if t is not None and t.is_floating_point() and not torch.isfinite(t).all():
                bad = int((~torch.isfinite(t)).reshape(n, -1).any(1).sum())
                raise DataError(f"{source}: {bad} samples contain NaN or inf values in {name} (expected finite numbers)")
        return self


def make_split(y: np.ndarray | None, n: int, test_fraction: float, seed: int) -> np.ndarray:
    """Seeded split of ``n`` samples: stratified by ``y`` when every class has >= 2 samples.

    Returns (n,) int8 with 0 = train, 1 = test.
    """
    index = np.arange(n)
    stratify = None
    if y is not None:
        _, counts = np.unique(y, return_counts=True)
        n_test = int(np.ceil(test_fraction * n))
        if counts.min() >= 2 and n_test >= len(counts) and n - n_test >= len(counts):
            stratify = y
    if n < 2:
        return np.zeros(n, dtype=np.int8)
    _, test = train_test_split(index, test_size=test_fraction, random_state=seed, stratify=stratify)
    split = np.zeros(n, dtype=np.int8)
    split[test] = 1
    return split


def to_unit_range(x: np.ndarray, source: str) -> tuple[np.ndarray, dict[str, float]]:
    """Map pixel values to [0, 1]: uint8 / 255, floats already in [0, 1] kept, others min-max scaled."""
    if x.size == 0:
        raise DataError(f"{source}: dataset is empty (expected at least 1 sample, found 0)")
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0, {"scale": 255.0, "offset": 0.0}
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).reshape(len(x), -1).any(1).sum())
        raise DataError(f"{source}: {bad} samples contain NaN or inf values (expected finite pixel values)")
    lo, hi = float(x.min()), float(x.max())
    if lo >= 0.0 and hi <= 1.0:
        return x, {"scale": 1.0, "offset": 0.0}
    span = hi - lo if hi > lo else 1.0
    return (x - lo) / span, {"scale": span, "offset": lo}


def peek_array(path: Path, key: str = "x") -> np.ndarray | None:
    """The array of a ``.npy`` file (memory-mapped) or the ``key`` array of a ``.npz``, for format
    sniffing; None when the file is not such an array or cannot be read (its loader reports why)."""
    suffix = path.suffix.lower()
    if not path.is_file() or suffix not in (".npy", ".npz"):
        return None
    try:
        if suffix == ".npy":
            return np.load(path, mmap_mode="r", allow_pickle=False)
        with np.load(path, allow_pickle=False) as f:
            return f[key] if key in f.files else None
    except Exception:  # noqa: BLE001 - unreadable files belong to other formats' error messages
        return None


Loader = Callable[..., NebulaDataset]


@dataclass(frozen=True)
class Format:
    """A file or folder format: ``match(path)`` says whether it applies, ``load(path, **options)`` reads it."""

    name: str
    modality: str
    match: Callable[[Path], bool]
    load: Loader
    priority: int = 0


def register_dataset(name: str) -> Callable[[Loader], Loader]:
    """Register ``loader(**options) -> NebulaDataset`` under a name usable as ``--data NAME``."""
    return register("dataset", name)


def register_format(name: str, modality: str, match: Callable[[Path], bool], priority: int = 0) -> Callable[[Loader], Loader]:
    """Register ``loader(path, **options) -> NebulaDataset`` for paths where ``match(path)`` is true.

    Higher ``priority`` formats are tried first (a specific folder layout before a generic one).
    """

    def wrap(fn: Loader) -> Loader:
        register("data format", name, Format(name, modality, match, fn, priority))
        return fn

    return wrap
