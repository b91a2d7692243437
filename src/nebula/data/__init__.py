"""Data loading: ``load(spec)`` turns a registered name or a path into a :class:`NebulaDataset`.

Formats register themselves with :func:`~nebula.data.base.register_format` (a ``match(path)`` test
and a loader), named datasets with :func:`~nebula.data.base.register_dataset`; a new format is a new
module (here or anywhere) that does so, and a new modality adds its record in :mod:`nebula.modalities`.
"""

from __future__ import annotations

import inspect
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nebula.data.base import Format, Loader, NebulaDataset, make_split, register_dataset, register_format
from nebula.errors import DataError, NebulaError
from nebula.registry import Registry, did_you_mean

#: what parsing truncated or corrupt bytes raises (numpy, struct, gzip/zlib, h5py, codecs); turned into DataError
_READ_ERRORS = (ValueError, IndexError, KeyError, EOFError, OSError, OverflowError, struct.error, zlib.error)


def _builtins() -> None:
    """The modules of this package that register the built-in formats and datasets."""
    from nebula.data import images, mat, parallel, points, shapes, stc2, text, voxels  # noqa: F401


#: name -> ``loader(**options)``, usable as ``--data NAME``
DATASETS: Registry[Loader] = Registry("dataset", _builtins)
#: name -> :class:`Format`
FORMATS: Registry[Format] = Registry("data format", _builtins)


def detect_format(path: Path, modality: str = "auto") -> Format:
    """The registered format for ``path`` (``modality`` narrows the choice)."""
    candidates = sorted(FORMATS.values(), key=lambda f: -f.priority)
    for fmt in candidates:
        if modality not in ("auto", fmt.modality):
            continue
        try:
            if fmt.match(path):
                return fmt
        except Exception:  # noqa: BLE001 - a sniffer that cannot read the file means "not this format"
            continue
    if path.suffix == ".npz" and path.is_file():
        _explain_npz(path)
    kind = "folder" if path.is_dir() else f"file with suffix '{path.suffix}'"
    known = ", ".join(FORMATS.names())
    raise DataError(f"{path}: unknown data format ({kind}); known formats: {known}")


def _explain_npz(path: Path) -> None:
    """Raise a DataError naming what an ``.npz`` that no format accepts lacks (the array ``x``, or its shape)."""
    try:
        with np.load(path, allow_pickle=False) as f:
            files = sorted(f.files)
            shape = f["x"].shape if "x" in files else None
    except Exception as exc:  # noqa: BLE001 - zip/format errors: a truncated or corrupt file
        raise DataError(f"{path}: cannot read .npz, the file looks truncated or corrupt ({type(exc).__name__})") from None
    expected = "images (N, H, W) or (N, C, H, W), point clouds (N, P, 3) or voxels (N, [1,] R, R, R)"
    if shape is None:
        raise DataError(f"{path}: expected an array named 'x' ({expected}), found arrays {files}")
    raise DataError(f"{path}: array 'x' has shape {shape}, expected {expected}")


def check_options(loader: Callable[..., Any], options: dict[str, Any], what: str, skip: int = 0) -> None:
    """Raise a DataError naming the ``options`` that ``loader`` does not take (and the ones it does);
    ``skip`` leading positional parameters (the path) are not options."""
    params = list(inspect.signature(loader).parameters.values())[skip:]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return
    names = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "state"]
    unknown = [k for k in options if k not in names and k != "state"]
    if unknown:
        hint = did_you_mean(unknown[0], names)
        takes = f"takes: {', '.join(names)}" if names else "takes no options"
        raise DataError(f"{what} does not take the option(s) {', '.join(unknown)}{hint} ({takes})")


def load(
    source: str | Path,
    modality: str = "auto",
    test_fraction: float = 0.2,
    split_seed: int = 0,
    options: dict[str, Any] | None = None,
) -> NebulaDataset:
    """Load a registered dataset or a file/folder and make sure it has a train/test split.

    Args:
        source: registered name (see ``DATASETS``) or a path.
        modality: ``auto`` or one of image, points, voxels, text; restricts format detection.
        test_fraction, split_seed: used when the data has no official split.
        options: loader-specific keyword arguments.
    Returns:
        A checked dataset whose ``meta`` records ``name``, ``modality``, ``source``, ``split_kind``.
    """
    options = dict(options or {})
    name = str(source)
    if name in DATASETS:
        loader = DATASETS.lookup(name)
        check_options(loader, options, f"dataset '{name}'")
        ds = loader(**options)
        ds.meta.setdefault("name", name)
    else:
        path = Path(name).expanduser()
        if not path.exists():
            hint = did_you_mean(name, DATASETS)
            raise DataError(f"{path}: no such file or folder, and not a registered dataset{hint} (registered: {', '.join(DATASETS.names())})")
        fmt = detect_format(path, modality)
        # loaders that fit state on the training split (a text vocabulary) split the data themselves
        accepts = inspect.signature(fmt.load).parameters
        options.update({k: v for k, v in (("test_fraction", test_fraction), ("split_seed", split_seed))
                        if k in accepts and k not in options})
        check_options(fmt.load, {k: v for k, v in options.items() if k not in ("test_fraction", "split_seed")},
                      f"{path}: format '{fmt.name}'", skip=1)
        try:
            ds = fmt.load(path, **options)
        except TypeError as exc:  # an option forwarded through **options to a function that does not take it
            if "unexpected keyword" in str(exc):
                raise DataError(f"{path}: format '{fmt.name}' does not take option(s) {sorted(options)}") from None
            raise
        except NebulaError:
            raise
        except _READ_ERRORS as exc:  # truncated or corrupt bytes that a loader did not anticipate
            detail = (str(exc).splitlines() or [""])[0][:160]
            raise DataError(f"{path}: cannot read as {fmt.name} data, the file looks truncated or corrupt "
                            f"({type(exc).__name__}: {detail})") from exc
        ds.meta.setdefault("name", path.stem or path.name)
        ds.meta.setdefault("format", fmt.name)
        ds.meta.setdefault("modality", fmt.modality)
    if modality != "auto" and ds.modality != modality:
        raise DataError(f"{name}: expected {modality} data, found {ds.modality}")
    ds.meta.setdefault("source", name)
    if ds.split is None:
        ds.split = make_split(ds.y, len(ds), test_fraction, split_seed)
        ds.meta["split_kind"] = f"stratified {1 - test_fraction:.0%}/{test_fraction:.0%} seed {split_seed}"
    else:
        ds.meta.setdefault("split_kind", "official")
    ds.split = np.asarray(ds.split, dtype=np.int8)
    if ds.y is not None:
        ds.y = np.asarray(ds.y, dtype=np.int64)
    return ds.check(name)


__all__ = ["NebulaDataset", "load", "register_dataset", "register_format", "DATASETS", "FORMATS", "make_split"]
