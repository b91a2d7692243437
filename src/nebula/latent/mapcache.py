"""A memo of t-SNE maps by content: the same rows, perplexity and seed give the same map, computed once.

A t-SNE map costs seconds to minutes (scikit-learn's Barnes-Hut, one thread: about 10 s for 1,437 digits),
and runs that share their data share maps: in a compare (:func:`nebula.experiments.grid.compare`) tae, tvae
and nvc-ml of one seed place their anchors on the same map of the training inputs, and tvae and nvc-ml,
identical until the placement, on the same map of their latents. :func:`lookup` / :func:`store` keep maps
in this process (the last ``MEMORY_MAPS``) and, inside :func:`shared`, in a folder that the worker
processes of a compare share (one ``.npy`` per map, written atomically). The key is the SHA-1 of the input
array (shape, dtype, bytes) and the map's parameters, so a hit returns exactly what the computation would
(the map is deterministic given them) and the runs' results do not depend on the memo.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

#: maps kept in this process's memory (each is only (N, 2) floats)
MEMORY_MAPS = 64
_memory: OrderedDict[str, np.ndarray] = OrderedDict()
_folder: Path | None = None


def map_key(flat: np.ndarray, **params: float | int | str) -> str:
    """Hex key of the (N, D) array ``flat`` and the map's parameters (sorted by name)."""
    h = hashlib.sha1()
    h.update(repr((flat.shape, flat.dtype.str, sorted(params.items()))).encode())
    h.update(np.ascontiguousarray(flat).data)
    return h.hexdigest()


def lookup(key: str) -> np.ndarray | None:
    """The map stored under ``key`` (a copy), or None."""
    if key in _memory:
        _memory.move_to_end(key)
        return _memory[key].copy()
    if _folder is not None:
        path = _folder / f"{key}.npy"
        try:
            emb = np.load(path)
        except (OSError, ValueError):  # absent, or being replaced by another process
            return None
        _remember(key, emb)
        return emb.copy()
    return None


def store(key: str, emb: np.ndarray) -> None:
    """Keep the map ``emb`` (N, 2) under ``key`` in memory and, inside :func:`shared`, in its folder."""
    _remember(key, np.array(emb))
    if _folder is None:
        return
    fd, tmp = tempfile.mkstemp(dir=_folder, prefix=".tmp-", suffix=".npy")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, emb)
        os.replace(tmp, _folder / f"{key}.npy")
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _remember(key: str, emb: np.ndarray) -> None:
    _memory[key] = emb
    _memory.move_to_end(key)
    while len(_memory) > MEMORY_MAPS:
        _memory.popitem(last=False)


def use_folder(folder: str | Path | None) -> None:
    """Share maps through ``folder`` (None: this process's memory only); e.g. a worker pool's initializer."""
    global _folder
    _folder = Path(folder) if folder is not None else None


@contextmanager
def shared(folder: str | Path) -> Iterator[Path]:
    """Within the block, maps are also kept in ``folder`` (which must exist), for other processes."""
    previous = _folder
    use_folder(folder)
    try:
        yield Path(folder)
    finally:
        use_folder(previous)
