"""Tiny data and configurations shared by the reliability tests."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import h5py
import numpy as np
import torch

from nebula.config import Config
from nebula.data.base import NebulaDataset


def tiny_config(output: Path | str | None, epochs: int = 3, **train: object) -> Config:
    """A small NVC-ml configuration on CPU (2-layer MLP, d = 3, m = 3, batch 16, no figures)."""
    cfg = Config()
    cfg.output = str(output) if output is not None else None
    cfg.model.hidden = [32, 16]
    cfg.model.feature_dim = 16
    cfg.model.latent_dim = 3
    cfg.model.num_anchors = 3
    cfg.loss.metric_order = -1
    cfg.train.epochs = epochs
    cfg.train.pretrain_epochs = 1
    cfg.train.batch_size = 16
    cfg.train.device = "cpu"
    cfg.train.quiet = True
    cfg.train.figures = False
    cfg.train.checkpoint_seconds = 0.0  # a checkpoint every epoch: these tests are about checkpoints
    for k, v in train.items():
        setattr(cfg.train, k, v)
    return cfg


def tiny_images(n: int = 60, side: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n uint8 side x side images of 3 classes (bright row, column or diagonal on noise) and labels."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 40, size=(n, side, side)).astype(np.uint8)
    y = np.arange(n) % 3
    mid = side // 2
    x[y == 0, mid, :] = 255
    x[y == 1, :, mid] = 255
    diag = np.flatnonzero(y == 2)
    x[diag[:, None], np.arange(side), np.arange(side)] = 255
    return x, y.astype(np.int64)


def tiny_dataset(n: int = 60, seed: int = 0) -> NebulaDataset:
    """The :func:`tiny_images` as a dataset with a fixed 80/20 split (no file involved)."""
    x, y = tiny_images(n, seed=seed)
    split = (np.arange(n) % 5 == 4).astype(np.int8)
    return NebulaDataset(x=torch.from_numpy(x[:, None].astype(np.float32) / 255.0), y=y, split=split,
                         meta={"modality": "image", "name": "tiny", "source": "tiny"})


# ------------------------------------------------------------------ valid files of every format
def idx_bytes(arr: np.ndarray) -> bytes:
    """IDX encoding of a uint8 array (magic 00 00 08 ndim, big-endian dims, payload)."""
    return bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.astype(np.uint8).tobytes()


def write_idx_pair(folder: Path, x: np.ndarray, y: np.ndarray, prefix: str = "train", gz: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    img = folder / f"{prefix}-images-idx3-ubyte{suffix}"
    lab = folder / f"{prefix}-labels-idx1-ubyte{suffix}"
    for path, arr in ((img, x), (lab, y.astype(np.uint8))):
        data = idx_bytes(arr)
        path.write_bytes(gzip.compress(data) if gz else data)
    return img


def write_h5(path: Path, x: np.ndarray, y: np.ndarray) -> Path:
    flat = x.reshape(len(x), -1).astype(np.float32) / 255.0
    half = len(x) // 2
    with h5py.File(path, "w") as f:
        for name, sl in (("train", slice(0, half)), ("test", slice(half, None))):
            g = f.create_group(name)
            g["data"] = flat[sl]
            g["target"] = y[sl]
    return path


def pcd_bytes(points: np.ndarray, binary: bool = True) -> bytes:
    n = len(points)
    header = ("# .PCD v0.7\nVERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\n"
              f"WIDTH {n}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\nDATA {'binary' if binary else 'ascii'}\n")
    if binary:
        return header.encode() + points.astype("<f4").tobytes()
    return (header + "\n".join(" ".join(f"{v:.5f}" for v in p) for p in points) + "\n").encode()


def ply_bytes(points: np.ndarray, binary: bool = True) -> bytes:
    n = len(points)
    fmt = "binary_little_endian" if binary else "ascii"
    header = (f"ply\nformat {fmt} 1.0\nelement vertex {n}\nproperty float x\nproperty float y\nproperty float z\n"
              "end_header\n")
    if binary:
        return header.encode() + points.astype("<f4").tobytes()
    return (header + "\n".join(" ".join(f"{v:.5f}" for v in p) for p in points) + "\n").encode()


def optdigits_text(x: np.ndarray, y: np.ndarray) -> str:
    counts = (x.reshape(len(x), -1).astype(np.int64) * 16 // 256)
    return "\n".join(",".join(map(str, [*row, int(c)])) for row, c in zip(counts, y)) + "\n"


def csv_text(n: int = 20) -> str:
    words = ["red", "green", "blue", "cat", "dog", "runs", "fast", "slow"]
    rows = [f"{'ham' if i % 3 else 'spam'},{' '.join(words[(i + k) % len(words)] for k in range(4))}" for i in range(n)]
    return "label,text\n" + "\n".join(rows) + "\n"


def cloud(n: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 3)).astype(np.float32)
