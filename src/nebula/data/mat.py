"""MATLAB ``.mat`` files: v4/v5/v7 through :func:`scipy.io.loadmat`, v7.3 (HDF5) through h5py.

Variables (options of the loader, ``--data-option KEY=VALUE``):

* ``x`` (default ``X``): the samples, (N, features) with images flattened.
* ``y`` (default ``Y``): labels, (N, 1) or (1, N). An absent default ``Y`` means unlabelled data; a ``y``
  named explicitly must exist.
* ``shape`` (``HxW``, ``CxHxW``, an int side or a list): read the rows as images of that shape. Without it
  the variables ``im_height`` / ``im_width`` (and ``im_channels``) of the file give the shape, when present.
* ``order`` ``C`` (row-major: ``row.reshape(H, W)`` is upright) or ``F`` (column-major, MATLAB's own
  order: ``row.reshape(H, W, order="F")``); default ``F``. Files differ (see the data README).

Images become (N, C, H, W) float32 in [0, 1] (modality ``image``). Everything else is tabular: (N, F)
float32 standardised per feature (zero mean, unit variance over the file; modality ``tabular``,
:mod:`nebula.modalities.tabular`: MLP encoder, MSE reconstruction). The mean and scale are the loader state a run keeps, so new data is
standardised the same way.

v7.3 files store MATLAB's column-major arrays as HDF5 datasets whose axes are reversed; they are read
back transposed, so both versions give the same arrays.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from nebula.data.base import NebulaDataset, register_format
from nebula.data.images import _images
from nebula.errors import DataError

#: MATLAB classes of numeric arrays in v7.3 files (attribute ``MATLAB_class``)
_NUMERIC_CLASSES = {"double", "single", "logical", "int8", "uint8", "int16", "uint16", "int32", "uint32",
                    "int64", "uint64"}

def _is_mat(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == ".mat"


def _is_v73(path: Path) -> bool:
    """A v7.3 MAT-file: a 512-byte text header followed by HDF5 (h5py finds the superblock)."""
    with open(path, "rb") as f:
        head = f.read(128)
    if head.startswith(b"MATLAB 7.3"):
        return True
    import h5py

    return bool(h5py.is_hdf5(str(path)))


def _read_v73(path: Path) -> dict[str, Any]:
    """Top-level variables of a v7.3 file: numeric datasets transposed to MATLAB's shape; others as None
    with their MATLAB class kept in the ``__class__`` entry (for the non-numeric error)."""
    import h5py

    out: dict[str, Any] = {}
    classes: dict[str, str] = {}
    with h5py.File(path, "r") as f:
        for name, item in f.items():
            if name.startswith("#"):  # '#refs#', '#subsystem#': storage of cell arrays and objects
                continue
            cls = item.attrs.get("MATLAB_class", b"")
            cls = cls.decode() if isinstance(cls, bytes) else str(cls)
            classes[name] = cls or ("struct" if isinstance(item, h5py.Group) else "")
            if isinstance(item, h5py.Dataset) and item.dtype.kind in "biuf" and (not cls or cls in _NUMERIC_CLASSES):
                out[name] = np.asarray(item).T
            else:
                out[name] = None
    out["__class__"] = classes
    return out


def read_mat(path: Path) -> dict[str, Any]:
    """name -> array for every variable of a MATLAB file (non-numeric ones as None or their raw value).

    Raises DataError when the file is not a MATLAB file.
    """
    import scipy.io

    try:
        if _is_v73(path):
            return _read_v73(path)
        data = scipy.io.loadmat(str(path), squeeze_me=False)
    except NotImplementedError:  # scipy: "Please use HDF reader for matlab v7.3 files"
        return _read_v73(path)
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - scipy raises ValueError/TypeError/OSError... for non-MAT bytes
        detail = (str(exc).splitlines() or [""])[0][:120]
        raise DataError(f"{path}: not a MATLAB .mat file (expected MAT-file v4, v5/v7 or v7.3; {type(exc).__name__}: {detail})") from None
    return {k: v for k, v in data.items() if not k.startswith("__")}


def _present(data: dict[str, Any]) -> str:
    names = [k for k in data if k != "__class__"]
    return ", ".join(sorted(names)) if names else "none"


def _numeric(data: dict[str, Any], name: str, path: Path, role: str) -> np.ndarray:
    """The numeric 2-D array of variable ``name``; DataError when it is missing or not numeric."""
    if name not in data or name == "__class__":
        raise DataError(f"{path}: no variable '{name}' for {role} (variables present: {_present(data)}); "
                        f"name another with --data-option {role}=NAME")
    value = data[name]
    if hasattr(value, "toarray"):  # scipy sparse matrix
        value = value.toarray()
    if value is None or not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
        cls = data.get("__class__", {}).get(name) or (type(value).__name__ if not isinstance(value, np.ndarray)
                                                     else {"U": "char", "S": "char", "O": "cell or struct",
                                                           "V": "struct"}.get(value.dtype.kind, str(value.dtype)))
        raise DataError(f"{path}: variable '{name}' ({role}) is not a numeric array (found {cls}); "
                        "expected a numeric matrix")
    return value


def _parse_shape(shape: Any, path: Path) -> tuple[int, ...]:
    """``32x32`` / ``1x32x32`` / 32 / [32, 32] -> (C, H, W)."""
    try:
        if isinstance(shape, (int, np.integer)):
            dims = [int(shape), int(shape)]
        elif isinstance(shape, (list, tuple)):
            dims = [int(v) for v in shape]
        else:
            dims = [int(v) for v in str(shape).lower().replace("*", "x").split("x")]
    except ValueError:
        dims = []
    if len(dims) not in (2, 3) or min(dims) < 1:
        raise DataError(f"{path}: shape={shape!r} is not an image shape (expected HxW or CxHxW, e.g. shape=32x32)")
    return tuple(dims) if len(dims) == 3 else (1, *dims)


def _file_shape(data: dict[str, Any]) -> tuple[int, ...] | None:
    """(C, H, W) from the file's ``im_height`` / ``im_width`` (/ ``im_channels``), or None."""
    dims = []
    for key in ("im_channels", "im_height", "im_width"):
        value = data.get(key)
        if isinstance(value, np.ndarray) and value.dtype.kind in "biuf" and value.size == 1:
            dims.append(int(value.reshape(-1)[0]))
        elif key != "im_channels":
            return None
    return tuple(dims) if len(dims) == 3 else (1, *dims)


def _labels(y: np.ndarray, n: int, name: str, x_name: str, path: Path) -> np.ndarray:
    if y.ndim > 2 or (y.ndim == 2 and min(y.shape) != 1):
        raise DataError(f"{path}: labels '{name}' have shape {y.shape} (expected (N, 1) or (1, N))")
    y = y.reshape(-1)
    if len(y) != n:
        raise DataError(f"{path}: '{name}' has {len(y)} labels for {n} samples in '{x_name}' "
                        "(expected one label per row of X)")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise DataError(f"{path}: labels '{name}' contain NaN or inf")
    return y


def load_mat(path: Path, x: str = "X", y: str | None = "Y", shape: Any = None, order: str = "F",
             tabular: bool = False, state: dict[str, Any] | None = None) -> NebulaDataset:
    """A MATLAB file as images (when a shape is known) or tabular data; see the module docstring.

    Args:
        x, y: variable names of the samples (N, features) and labels (N, 1); ``y=none`` for no labels.
        shape: image shape of one row (overrides ``im_height`` / ``im_width``).
        order: ``C`` or ``F``, how a row is laid out as an image.
        tabular: read as tabular data even when the file gives an image shape (``--modality tabular``).
        state: per-feature ``mean`` / ``scale`` of a run's training file (tabular data read for that run).
    """
    data = read_mat(path)
    x_name, y_name = str(x), None if y is None or str(y).lower() == "none" else str(y)
    order_key = str(order).upper()
    if order_key not in ("C", "F"):
        raise DataError(f"{path}: order={order!r} (expected C, row-major, or F, column-major)")
    arr = _numeric(data, x_name, path, "x")
    if arr.ndim != 2:
        raise DataError(f"{path}: '{x_name}' has shape {arr.shape} (expected a matrix (N, features), one row per sample)")
    n = arr.shape[0]
    labels = None
    meta: dict[str, Any] = {"name": path.stem}
    if y_name is not None and (y_name in data or str(y) != "Y"):
        raw = _labels(_numeric(data, y_name, path, "y"), n, y_name, x_name, path)
        # labels 0..K-1 in sorted order of the file's values (MATLAB files usually count from 1)
        values, labels = np.unique(raw, return_inverse=True)
        labels = labels.astype(np.int64)
        meta["class_names"] = [f"{v:g}" if isinstance(v, float) else str(v) for v in values.tolist()]
    meta["variables"] = {"x": x_name, "y": y_name if labels is not None else None}
    image_shape = None if tabular else (_parse_shape(shape, path) if shape is not None else _file_shape(data))
    if image_shape is not None:
        c, h, w = image_shape
        if c * h * w != arr.shape[1]:
            raise DataError(f"{path}: rows of '{x_name}' have {arr.shape[1]} values, an image of shape "
                            f"{c}x{h}x{w} needs {c * h * w} (check shape=)")
        # a row holds the pixels of (C, H, W) in C order, or of MATLAB's (H, W, C) in F order
        imgs = arr.reshape(n, c, h, w) if order_key == "C" else arr.reshape(n, w, h, c).transpose(0, 3, 2, 1)
        return _images(np.ascontiguousarray(imgs), labels, None, str(path), order=order_key, **meta)
    values = arr.astype(np.float64)
    if not np.isfinite(values).all():
        bad = int((~np.isfinite(values)).any(1).sum())
        raise DataError(f"{path}: {bad} rows of '{x_name}' contain NaN or inf (expected finite numbers)")
    if state and "mean" in state and "scale" in state:
        mean, scale = np.asarray(state["mean"], np.float64), np.asarray(state["scale"], np.float64)
        if mean.shape != (values.shape[1],):
            raise DataError(f"{path}: '{x_name}' has {values.shape[1]} features, the run was trained on {mean.shape[0]}")
    else:
        mean, std = values.mean(0), values.std(0)
        scale = np.where(std > 0, std, 1.0)
    meta.update(modality="tabular", state={"mean": mean.tolist(), "scale": scale.tolist()})
    x_std = torch.from_numpy(((values - mean) / scale).astype(np.float32))
    return NebulaDataset(x=x_std, y=labels, split=None, meta=meta)


@register_format("mat", "image", _is_mat, priority=5)
def _load_mat_auto(path: Path, x: str = "X", y: str | None = "Y", shape: Any = None, order: str = "F",
                   state: dict[str, Any] | None = None) -> NebulaDataset:
    """``.mat``: images when a shape is known (option ``shape`` or ``im_height``/``im_width``), else tabular."""
    return load_mat(path, x=x, y=y, shape=shape, order=order, state=state)


@register_format("mat-tabular", "tabular", _is_mat, priority=4)
def _load_mat_tabular(path: Path, x: str = "X", y: str | None = "Y", state: dict[str, Any] | None = None) -> NebulaDataset:
    """``.mat`` read as tabular data (``--modality tabular``), whatever image shape the file records."""
    return load_mat(path, x=x, y=y, tabular=True, state=state)
