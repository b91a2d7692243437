"""Numeric guards: a NaN/inf loss, gradient or parameter stops training with a message naming the
term or parameters and the step, before anything of that step is logged or saved.

Without gradient clipping no pass over the gradients is made: a NaN/inf gradient turns the parameters
it reaches non-finite in the optimiser step, which :func:`check_parameters` reports (at the next
non-finite loss, at the latest at the end of the epoch).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from nebula.errors import NebulaError
from nebula.train import distributed

HINT = "(try a lower --lr or --grad-clip)"


class NonFiniteLoss(NebulaError):
    """A loss term or gradient became NaN/inf."""


def names(found: list[str]) -> str:
    """The first three names and how many more."""
    return ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")


class NumericGuards:
    """Checks of one training run.

    Args:
        model: the trained module.
        world_size: processes of the job (flags are reduced over ranks).
        device: where the flags live.
        kept: () -> what was saved, for the messages ("the last good checkpoint ... is kept").
    """

    def __init__(self, model: torch.nn.Module, world_size: int, device: torch.device, kept: Callable[[], str]) -> None:
        self.model, self.world_size, self.device, self.kept = model, world_size, device, kept
        self.last_update: tuple[int, int] | None = None  # (epoch, step) of the last optimiser step

    def check_step(self, out: Any, stop: bool, epoch: int, step: int) -> bool:
        """Raise :class:`NonFiniteLoss` when the loss is NaN/inf on any rank; return whether any rank got a stop
        signal. A non-finite loss whose cause is a non-finite parameter (a NaN/inf gradient reached the previous
        update) is reported as that gradient's fault, at the step of that update."""
        finite = math.isfinite(out.loss.item())
        if self.world_size > 1:
            flags = torch.tensor([0.0 if finite else 1.0, 1.0 if stop else 0.0], device=self.device)
            flags = distributed.all_reduce_max(flags)
            finite, stop = bool(flags[0] == 0), bool(flags[1] > 0)
        if not finite:
            self.check_parameters()
            bad = [k for k, v in out.terms.items() if not torch.isfinite(v).all()]
            which = ", ".join(bad) if bad else ("total" if not torch.isfinite(out.loss) else "on another rank")
            raise NonFiniteLoss(f"loss term(s) {which} became non-finite at epoch {epoch + 1}, step {step + 1}; stopped, "
                                f"{self.kept()} {HINT}")
        return stop

    def clip_gradients(self, max_norm: float, epoch: int, step: int) -> None:
        """Clip the gradient norm to ``max_norm`` when > 0, raising :class:`NonFiniteLoss` on a NaN/inf norm."""
        if max_norm <= 0:
            return
        params = [p for p in self.model.parameters() if p.grad is not None]
        if not params:
            return
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        if torch.isfinite(norm):
            return
        bad = [n for n, p in self.model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
        raise NonFiniteLoss(f"gradient of {names(bad)} became non-finite at epoch {epoch + 1}, step {step + 1}; "
                            f"stopped, {self.kept()} {HINT}")

    def check_parameters(self) -> None:
        """Raise :class:`NonFiniteLoss` naming the parameters that became NaN/inf and the update that did it
        (one pass over the parameters; DDP keeps them equal on every rank)."""
        params = list(self.model.parameters())
        if not params or bool(torch.isfinite(torch.stack([p.detach().sum().float() for p in params]).sum())):
            return
        bad = [n for n, p in self.model.named_parameters() if not torch.isfinite(p.detach()).all()]
        if not bad:  # sums overflowed, every element finite
            return
        if self.last_update is None:
            raise NonFiniteLoss(f"parameters {names(bad)} are NaN/inf before training; stopped, {self.kept()}")
        epoch, step = self.last_update
        raise NonFiniteLoss(f"gradient of {names(bad)} became non-finite at epoch {epoch + 1}, step {step + 1} "
                            f"(the parameters it updated are NaN/inf); stopped, {self.kept()} {HINT}")
