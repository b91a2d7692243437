"""Shared fixtures: tiny generated data, and the optional real datasets in ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_dataset(name: str) -> Path:
    """Path to ../shared/data/<name>, or skip the test when it is absent."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"{path} not available")
    return path


@pytest.fixture
def tiny_images() -> tuple[np.ndarray, np.ndarray]:
    """60 8x8 uint8 images of 3 classes (a bright row, column or diagonal) and their labels."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 40, size=(60, 8, 8)).astype(np.uint8)
    y = np.arange(60) % 3
    for i, c in enumerate(y):
        if c == 0:
            x[i, 3, :] = 255
        elif c == 1:
            x[i, :, 3] = 255
        else:
            x[i, np.arange(8), np.arange(8)] = 255
    return x, y.astype(np.int64)


@pytest.fixture
def tiny_npz(tmp_path, tiny_images) -> Path:
    """The tiny images saved as ``tiny.npz`` with arrays x and y (no split)."""
    x, y = tiny_images
    path = tmp_path / "tiny.npz"
    np.savez(path, x=x, y=y)
    return path
