"""Training state that an exact resume needs besides the weights: random streams and running loss sums.

The random state covers torch (CPU and the CUDA device), numpy, python's ``random`` and the trainer's
own generator; under torchrun every rank draws its own noise, so the states of all ranks are kept.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from nebula.train import distributed


def rng_state(generator: torch.Generator, device: torch.device, world_size: int) -> dict[str, Any]:
    """Every random stream as tensors and numbers (a collective under torchrun)."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    torch_rng = torch.get_rng_state()
    state: dict[str, Any] = {
        "torch_rng": torch_rng,
        "generator": generator.get_state(),
        "numpy_rng": {"keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)), "pos": int(np_state[2]),
                      "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python_rng": {"version": int(py_state[0]), "state": torch.tensor(py_state[1], dtype=torch.int64),
                       "gauss_next": py_state[2]},
    }
    if device.type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(device)
    if world_size > 1:  # every rank draws its own noise: keep all of them (collective)
        state["torch_rng_ranks"] = distributed.all_gather_tensor(torch_rng, device)
        if "cuda_rng" in state:
            state["cuda_rng_ranks"] = distributed.all_gather_tensor(state["cuda_rng"], device)
    return state


def set_rng_state(state: dict[str, Any], generator: torch.Generator, device: torch.device, rank: int,
                  world_size: int, seed: int, notify: Callable[[str], None]) -> None:
    """Restore what :func:`rng_state` saved. A checkpoint of another number of processes restarts the
    torch streams from (seed, rank, epochs done) and says so."""
    if world_size > 1 and state.get("world_size") == world_size and "torch_rng_ranks" in state:
        torch.set_rng_state(state["torch_rng_ranks"][rank].clone())
        if "cuda_rng_ranks" in state and device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng_ranks"][rank].clone(), device)
    elif world_size > 1 or state.get("world_size", 1) != world_size:
        notify(f"resuming a {state.get('world_size', 1)}-process checkpoint with {world_size} process(es): "
               "random streams restart from the seed")
        torch.manual_seed(seed + 7919 * (rank + 1) + 104729 * int(state["epochs_done"]))
    else:
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], device)
    generator.set_state(state["generator"])
    npr = state["numpy_rng"]
    np.random.set_state(("MT19937", npr["keys"].numpy().astype(np.uint32), npr["pos"], npr["has_gauss"],
                         npr["cached_gaussian"]))
    pyr = state["python_rng"]
    random.setstate((pyr["version"], tuple(int(v) for v in pyr["state"].tolist()), pyr["gauss_next"]))


class RunningSums:
    """Per-epoch sums of the scalar loss terms and the total: each step adds one stacked vector (two tensor
    operations a step whatever the number of terms); a change of the term names starts a new vector. Sums are
    float64, so that the grouping (one vector, or a resumed epoch's saved sums plus the rest) does not
    change the logged means."""

    def __init__(self, start: dict[str, torch.Tensor]) -> None:
        self._totals: dict[str, Any] = dict(start)
        self._keys: tuple[str, ...] | None = None
        self._vec: torch.Tensor | None = None

    def add(self, terms: dict[str, torch.Tensor], loss: torch.Tensor) -> None:
        keys = (*terms, "loss")
        with torch.no_grad():
            vec = torch.stack([*terms.values(), loss]).double()
        if keys == self._keys:
            self._vec.add_(vec)
        else:
            self._fold()
            self._keys, self._vec = keys, vec

    def _fold(self) -> None:
        if self._keys is not None:
            for k, v in zip(self._keys, self._vec):
                self._totals[k] = self._totals.get(k, 0.0) + v
            self._keys = self._vec = None

    def totals(self) -> dict[str, torch.Tensor]:
        """name -> sum so far (0-d tensors)."""
        self._fold()
        return self._totals
