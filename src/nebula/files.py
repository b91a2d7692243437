"""Reading and writing a run folder's small files with one-line errors.

A truncated or corrupt ``embeddings.npz`` / ``run.json`` / ``eval.json``, an output path that is a
folder, below a regular file or on a read-only file system: each is a :class:`~nebula.errors.NebulaError`
naming the file and what was wrong, and a failed write leaves no temporary file behind.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nebula.errors import NebulaError


def os_error_message(exc: OSError, path: str | Path | None = None) -> str:
    """One line for an OSError: the path it concerns and the system's reason, e.g.
    ``runs/x: cannot write (read-only file system)``."""
    where = exc.filename if exc.filename is not None else path
    reason = (exc.strerror or type(exc).__name__).lower()
    if exc.errno == errno.ENOTDIR:
        reason = "a part of this path is a regular file, not a folder"
    action = "cannot write" if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT) else "cannot use"
    return f"{where}: {action} ({reason})"


def check_writable_folder(folder: str | Path) -> None:
    """Raise a NebulaError unless ``folder`` is, or can be created as, a folder this process may write into:
    no part of the path is a regular file, and the nearest existing ancestor is writable."""
    folder = Path(folder)
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise NebulaError(f"{folder}: cannot create, {probe} is a regular file, not a folder")
    if probe.exists() and not os.access(probe, os.W_OK | os.X_OK):
        raise NebulaError(f"{folder}: cannot write into {probe} (permission denied or read-only file system)")


def read_json(path: str | Path, what: str = "file") -> Any:
    """The JSON content of ``path``; a NebulaError when it is missing, unreadable or not valid JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NebulaError(f"{path}: {what} not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise NebulaError(f"{path}: {what} is not valid JSON, the file looks truncated or corrupt "
                          f"({(str(exc).splitlines() or [''])[0][:120]})") from None
    except OSError as exc:
        raise NebulaError(os_error_message(exc, path)) from None


def read_npz(path: str | Path, required: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` (no pickles); a NebulaError naming the file when it is truncated,
    corrupt or lacks one of the ``required`` arrays."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            out = {k: f[k] for k in f.files}
    except FileNotFoundError:
        raise NebulaError(f"{path}: not found") from None
    except OSError as exc:
        if isinstance(exc, (PermissionError, IsADirectoryError)):
            raise NebulaError(os_error_message(exc, path)) from None
        raise NebulaError(f"{path}: cannot read, the file looks truncated or corrupt ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - BadZipFile, ValueError (pickled/garbled arrays), EOFError, ...
        raise NebulaError(f"{path}: cannot read as .npz, the file looks truncated or corrupt "
                          f"({type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:120]})") from None
    missing = [k for k in required if k not in out]
    if missing:
        raise NebulaError(f"{path}: expected an array named '{missing[0]}', found {sorted(out)}")
    return out


def _write_atomic(path: Path, suffix: str, mode: str, write: Callable[[Any], None], make_folder: bool) -> Path:
    """Write ``path`` with ``write(file)`` through a temporary file in the same folder and a rename (creating
    the folder when ``make_folder``); on any failure nothing is left behind and an OSError becomes a
    NebulaError naming ``path``."""
    check_writable_folder(path.parent)
    try:
        if make_folder:
            path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    except OSError as exc:
        raise NebulaError(os_error_message(exc, path)) from None
    try:
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if "b" not in mode else {})) as f:
            write(f)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise NebulaError(os_error_message(exc, path)) from None
        raise
    return path


def write_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` to ``path`` (.npz) through a temporary file in the same folder and a rename; on any
    failure (a folder at ``path``, a read-only file system, a full disk) nothing is left behind and the
    error is a NebulaError naming ``path``."""
    path = Path(path)
    if path.is_dir():
        raise NebulaError(f"{path}: is a folder (expected the path of an .npz file to write)")
    return _write_atomic(path, ".tmp.npz", "wb", lambda f: np.savez(f, **arrays), make_folder=True)


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename; a NebulaError naming ``path`` on
    failure, with no temporary file left behind."""
    return _write_atomic(Path(path), ".tmp", "w", lambda f: f.write(text), make_folder=False)
