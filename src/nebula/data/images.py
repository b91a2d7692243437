"""Image datasets: scikit-learn digits, MNIST-family IDX, USPS HDF5, UCI optdigits, ``.npz`` and
folders of class sub-folders of PNG/JPEG files.

Every loader returns images as (N, C, H, W) float32 in [0, 1] and int64 labels.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import torch

from nebula.data.base import NebulaDataset, register_dataset, register_format, to_unit_range
from nebula.errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff"}


def _images(x: np.ndarray, y: np.ndarray | None, split: np.ndarray | None, source: str, **meta) -> NebulaDataset:
    """Build an image dataset from (N, H, W) or (N, C, H, W) pixels."""
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise DataError(f"{source}: expected images shaped (N, H, W) or (N, C, H, W), found shape {tuple(x.shape)}")
    if x.shape[1] not in (1, 3, 4) and x.shape[-1] in (1, 3, 4):
        x = np.transpose(x, (0, 3, 1, 2))  # channels-last input
    if y is not None:
        y = np.asarray(y).reshape(-1)
        if len(y) != len(x):
            raise DataError(f"{source}: {len(y)} labels for {len(x)} images (expected one label per image)")
        if not np.issubdtype(y.dtype, np.integer):
            if np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
                y = y.astype(np.int64)
            else:
                classes, y = np.unique(y, return_inverse=True)
                meta.setdefault("class_names", [str(c) for c in classes])
        y = y.astype(np.int64)
    pixels, scaling = to_unit_range(np.ascontiguousarray(x), source)
    meta.update(modality="image", pixel_scaling=scaling)
    return NebulaDataset(x=torch.from_numpy(pixels), y=y, split=split, meta=meta)


# --------------------------------------------------------------------------- scikit-learn digits
@register_dataset("digits")
def load_digits() -> NebulaDataset:
    """scikit-learn's bundled 8x8 digits (1,797 images, values 0..16, 10 classes); no official split."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    x = (bunch.images / 16.0).astype(np.float32)
    return _images(x, bunch.target, None, "digits", name="digits", class_names=[str(i) for i in range(10)])


# --------------------------------------------------------------------------- IDX (MNIST family)
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) into an array of its declared shape."""
    try:
        raw = gzip.open(path, "rb").read() if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: cannot read IDX data ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path}: not an IDX file (expected magic 00 00 <type> <ndim>, found {raw[:4].hex() or 'nothing'})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{path}: truncated IDX header (expected {header} bytes, found {len(raw)})")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(f"{path}: IDX payload has {len(raw) - header} bytes, expected {expected} for shape {shape}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _idx_files(folder: Path, kind: str) -> dict[str, Path]:
    """Map split prefix ('train', 't10k', ...) -> path for ``*-<kind>-idx?-ubyte[.gz]`` files."""
    found: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        name = p.name
        if f"-{kind}-idx" in name and ("ubyte" in name):
            found[name.split(f"-{kind}-")[0]] = p
    return found


def _is_idx(path: Path) -> bool:
    if path.is_dir():
        return any("-images-idx" in p.name for p in path.iterdir())
    return "idx" in path.name and "ubyte" in path.name


@register_format("idx", "image", _is_idx, priority=10)
def load_idx(path: Path) -> NebulaDataset:
    """MNIST / Fashion-MNIST / KMNIST layout: ``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``.

    A folder with both prefixes keeps the official split (train = 0, t10k = 1); with one prefix the data
    gets a seeded split. A single images file may be given; its labels file is looked up beside it.
    """
    if path.is_dir():
        images, labels = _idx_files(path, "images"), _idx_files(path, "labels")
    else:
        prefix = path.name.split("-images-")[0]
        images = {prefix: path}
        labels = {k: v for k, v in _idx_files(path.parent, "labels").items() if k == prefix}
    if not images:
        raise DataError(f"{path}: no '*-images-idx3-ubyte[.gz]' file found")
    xs, ys, splits = [], [], []
    for prefix, img_path in sorted(images.items(), key=lambda kv: kv[0].startswith(("t10k", "test"))):
        x = read_idx(img_path)
        if prefix in labels:
            y = read_idx(labels[prefix]).astype(np.int64)
            if len(y) != len(x):
                raise DataError(f"{labels[prefix]}: {len(y)} labels for {len(x)} images in {img_path.name}")
            ys.append(y)
        xs.append(x)
        splits.append(np.full(len(x), 1 if prefix.startswith(("t10k", "test")) else 0, dtype=np.int8))
    y = np.concatenate(ys) if len(ys) == len(xs) else None
    split = np.concatenate(splits)
    official = len(set(split.tolist())) == 2
    return _images(np.concatenate(xs), y, split if official else None, str(path), name=path.stem)


# --------------------------------------------------------------------------- USPS HDF5
def _is_h5_images(path: Path) -> bool:
    if path.suffix.lower() not in (".h5", ".hdf5"):
        return False
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return "train" in f and "data" in f["train"] and f["train"]["data"].ndim in (2, 3, 4) and (
                f["train"]["data"].ndim != 3 or f["train"]["data"].shape[-1] != 3
            )
    except OSError:
        return True  # an unreadable .h5 gets this loader's clear error


@register_format("usps-h5", "image", _is_h5_images, priority=5)
def load_h5_images(path: Path, side: int | None = None) -> NebulaDataset:
    """HDF5 with ``train/data``, ``train/target``, ``test/data``, ``test/target`` (USPS layout).

    Flat rows of ``side*side`` pixels are reshaped to square images (side inferred when omitted).
    """
    import h5py

    try:
        with h5py.File(path, "r") as f:
            parts = []
            for s, key in enumerate(("train", "test")):
                if key in f:
                    data = np.asarray(f[key]["data"])
                    target = np.asarray(f[key]["target"]) if "target" in f[key] else None
                    parts.append((data, target, s))
    except (OSError, KeyError) as exc:
        raise DataError(f"{path}: cannot read HDF5 images ({exc}); expected groups train/test with data and target") from None
    xs = []
    for data, _, _ in parts:
        if data.ndim == 2:
            n_side = side or int(round(np.sqrt(data.shape[1])))
            if n_side * n_side != data.shape[1]:
                raise DataError(f"{path}: rows of {data.shape[1]} pixels are not square images; pass side=")
            data = data.reshape(len(data), n_side, n_side)
        xs.append(data)
    has_labels = all(t is not None for _, t, _ in parts)
    y = np.concatenate([t.reshape(-1) for _, t, _ in parts]) if has_labels else None
    split = np.concatenate([np.full(len(d), s, dtype=np.int8) for d, _, s in parts])
    official = len(parts) == 2
    return _images(np.concatenate(xs), y, split if official else None, str(path), name=path.stem)


# --------------------------------------------------------------------------- UCI optdigits
def _is_optdigits(path: Path) -> bool:
    if path.is_dir():
        return (path / "optdigits.tra").exists() or (path / "optdigits.tes").exists()
    return path.suffix in (".tra", ".tes")


def _read_optdigits(path: Path) -> tuple[np.ndarray, np.ndarray]:
    rows = []
    try:
        lines = path.read_text(encoding="ascii").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read optdigits CSV ({exc})") from None
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        fields = line.split(",")
        try:
            values = [int(v) for v in fields]
        except ValueError:
            if number == 1:
                continue  # header line added by some copies
            raise DataError(f"{path}:{number}: expected 65 integers, found {line[:40]!r}") from None
        if len(values) != 65:
            raise DataError(f"{path}:{number}: expected 65 comma-separated integers (64 pixels + class), found {len(values)}")
        rows.append(values)
    if not rows:
        raise DataError(f"{path}: no data rows (expected lines of 65 integers)")
    arr = np.asarray(rows, dtype=np.int64)
    return arr[:, :64].reshape(-1, 8, 8).astype(np.float32) / 16.0, arr[:, 64]


@register_format("optdigits", "image", _is_optdigits, priority=5)
def load_optdigits(path: Path) -> NebulaDataset:
    """UCI optdigits CSV (``optdigits.tra`` = train, ``optdigits.tes`` = test; 8x8 counts 0..16)."""
    files = [(path / "optdigits.tra", 0), (path / "optdigits.tes", 1)] if path.is_dir() else [(path, int(path.suffix == ".tes"))]
    files = [(p, s) for p, s in files if p.exists()]
    parts = [(*_read_optdigits(p), s) for p, s in files]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    split = np.concatenate([np.full(len(p[0]), p[2], dtype=np.int8) for p in parts])
    return _images(x, y, split if len(parts) == 2 else None, str(path), name="optdigits")


# --------------------------------------------------------------------------- .npz
def _is_image_npz(path: Path) -> bool:
    if path.suffix != ".npz":
        return False
    try:
        with np.load(path) as f:
            return "x" in f.files and f["x"].ndim in (3, 4)
    except Exception:  # noqa: BLE001 - a broken file is reported by the loader
        return True


@register_format("npz", "image", _is_image_npz, priority=1)
def load_npz(path: Path) -> NebulaDataset:
    """``.npz`` with ``x`` (N,H,W) or (N,C,H,W) uint8/float, optional ``y`` (N,) and ``split`` (N,)."""
    try:
        with np.load(path, allow_pickle=False) as f:
            if "x" not in f.files:
                raise DataError(f"{path}: expected an array named 'x', found {sorted(f.files)}")
            x, y = f["x"], (f["y"] if "y" in f.files else None)
            split = f["split"].astype(np.int8) if "split" in f.files else None
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - zip/pickle/format errors all mean "not a valid npz"
        raise DataError(f"{path}: cannot read .npz ({type(exc).__name__}: {exc})") from None
    if split is not None and len(split) != len(x):
        raise DataError(f"{path}: 'split' has {len(split)} entries for {len(x)} samples")
    return _images(x, y, split, str(path), name=path.stem)


# --------------------------------------------------------------------------- folder of class folders
def _class_dirs(path: Path) -> list[Path]:
    return sorted(d for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))


def _is_image_folder(path: Path) -> bool:
    if not path.is_dir():
        return False
    for d in _class_dirs(path):
        if any(p.suffix.lower() in IMAGE_SUFFIXES for p in d.iterdir()):
            return True
    return False


@register_format("image-folder", "image", _is_image_folder, priority=0)
def load_image_folder(path: Path, size: int | list[int] | None = None, grayscale: bool | None = None) -> NebulaDataset:
    """``root/<class>/<image>`` PNG/JPEG files; labels are class folders in sorted order.

    Images must share one size unless ``size`` (side or [H, W]) is given; they are converted to grey
    when every image is grey (or ``grayscale`` says so), else to RGB.
    """
    from PIL import Image, UnidentifiedImageError

    classes = [d for d in _class_dirs(path) if any(p.suffix.lower() in IMAGE_SUFFIXES for p in d.iterdir())]
    files = [(p, k) for k, d in enumerate(classes) for p in sorted(d.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
    images, labels = [], []
    for file, label in files:
        try:
            with Image.open(file) as im:
                im.load()
                images.append(im.copy())
        except (UnidentifiedImageError, OSError) as exc:
            raise DataError(f"{file}: cannot read image ({exc})") from None
        labels.append(label)
    if grayscale is None:
        grayscale = all(im.mode in ("L", "1", "I", "I;16", "F") for im in images)
    mode = "L" if grayscale else "RGB"
    target = None if size is None else ((size, size) if isinstance(size, int) else tuple(size))
    arrays = []
    for (file, _), im in zip(files, images):
        im = im.convert(mode)
        if target is not None:
            im = im.resize((target[1], target[0]), Image.BILINEAR)
        elif arrays and (im.size[1], im.size[0]) != arrays[0].shape[:2]:
            raise DataError(f"{file}: image is {im.size[0]}x{im.size[1]}, expected {arrays[0].shape[1]}x{arrays[0].shape[0]} like the first image; pass size=")
        arrays.append(np.asarray(im, dtype=np.uint8))
    x = np.stack(arrays) if arrays else np.zeros((0, 1, 1), np.uint8)
    if x.ndim == 4:
        x = np.transpose(x, (0, 3, 1, 2))
    return _images(x, np.asarray(labels, dtype=np.int64), None, str(path), name=path.name,
                   class_names=[d.name for d in classes])
