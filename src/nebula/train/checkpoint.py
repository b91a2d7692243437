"""Atomic files and training checkpoints.

A checkpoint is a folder ``checkpoints/ckpt-EEEE-SSSSSS/`` (E completed epochs, S steps into the next
one; names sort in training order) with ``model.safetensors`` (weights and buffers), ``state.pt``
(the run's configuration as YAML, optimiser, scheduler, RNG and data-order state, partial epoch sums;
loadable with ``weights_only=True``)
and a ``COMPLETE`` marker, written to a temporary folder, fsynced and renamed, so a crash (even
``kill -9``) never leaves a half-written checkpoint under its final name. The last ``keep`` checkpoints
are kept; loading falls back to the previous good one when the newest is truncated or corrupt.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from nebula.errors import NebulaError

CHECKPOINT_DIR = "checkpoints"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder, fsync and rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def state_tensors(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Contiguous CPU copies of a module's parameters and buffers (safetensors needs unshared storage)."""
    return {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}


def save_weights(module: torch.nn.Module, path: Path, metadata: dict[str, str] | None = None) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(state_tensors(module), str(tmp), metadata=metadata)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def load_weights(module: torch.nn.Module, path: Path) -> None:
    try:
        tensors = load_file(str(path))
    except Exception as exc:  # noqa: BLE001 - safetensors raises several types for bad files
        raise NebulaError(f"{path}: cannot read weights ({type(exc).__name__}: {exc})") from None
    missing, unexpected = module.load_state_dict(tensors, strict=False)
    if missing or unexpected:
        raise NebulaError(f"{path}: weights do not match the model (missing {missing[:3]}, unexpected {unexpected[:3]})")


def checkpoint_name(epochs_done: int, step: int = 0) -> str:
    """Folder name of the checkpoint taken after ``epochs_done`` epochs and ``step`` more steps."""
    return f"ckpt-{epochs_done:04d}-{step:06d}"


def save_checkpoint(run_dir: Path, epochs_done: int, model: torch.nn.Module, state: dict[str, Any], step: int = 0,
                    keep: int = 2) -> Path:
    """Write ``checkpoints/ckpt-EEEE-SSSSSS`` atomically and prune to the newest ``keep``.

    Leftover temporary folders of a writer that was killed are removed first.
    """
    root = Path(run_dir) / CHECKPOINT_DIR
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(".tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    final = root / checkpoint_name(epochs_done, step)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".tmp-"))
    try:
        save_weights(model, tmp / "model.safetensors")
        buf = tmp / "state.pt"
        torch.save(state, buf)
        with open(buf, "rb") as f:
            os.fsync(f.fileno())
        atomic_write_text(tmp / "COMPLETE", f"{epochs_done} {step}")
        _fsync_dir(tmp)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in list_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoint folders, oldest first."""
    root = Path(run_dir) / CHECKPOINT_DIR
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("ckpt-"))


def _check_matches(model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Raise unless ``tensors`` has exactly the model's keys and shapes (checked before anything is loaded)."""
    own = model.state_dict()
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    if missing or unexpected:
        raise NebulaError(f"weights do not match the model (missing {missing[:3]}, unexpected {unexpected[:3]})")
    for k, v in own.items():
        if tuple(v.shape) != tuple(tensors[k].shape):
            raise NebulaError(f"weight {k} has shape {tuple(tensors[k].shape)}, the model expects {tuple(v.shape)}")


def load_latest_checkpoint(run_dir: Path, model: torch.nn.Module, warn=print) -> dict[str, Any] | None:
    """Load the newest readable checkpoint into ``model`` and return its state (None if none).

    A corrupt or truncated checkpoint is reported through ``warn`` and the previous one is tried.
    """
    for ckpt in reversed(list_checkpoints(run_dir)):
        try:
            if not (ckpt / "COMPLETE").exists():
                raise NebulaError("incomplete (no COMPLETE marker)")
            tensors = load_file(str(ckpt / "model.safetensors"))
            state = torch.load(ckpt / "state.pt", map_location="cpu", weights_only=True)
            if not isinstance(state, dict) or "epochs_done" not in state:
                raise NebulaError("state.pt holds no training state")
            _check_matches(model, tensors)
            model.load_state_dict(tensors)
            state["path"] = str(ckpt)
            return state
        except Exception as exc:  # noqa: BLE001 - any failure means "try the previous checkpoint"
            detail = (str(exc).splitlines() or [""])[0][:160]
            warn(f"checkpoint {ckpt} is unreadable ({type(exc).__name__}: {detail}); falling back to the previous one")
    return None
