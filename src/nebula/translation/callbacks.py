"""The translation method's own training mechanics as trainer callbacks (:mod:`nebula.train.callbacks`)."""

from __future__ import annotations

from typing import Any

import torch

from nebula.train.callbacks import Callback


class LinearWarmup(Callback):
    """Linear learning-rate warm-up over the first ``steps`` optimiser steps, on top of the trainer's schedule.

    Before step s (global, 0-based) of the warm-up every group's rate becomes ``lr_sched(s) * (s + 1) / W``
    with lr_sched the trainer's scheduled rate and W = min(``steps``, a tenth of the run's steps, at least 1).
    It is a function of the step alone, so a resumed run gets the same rates.
    """

    def __init__(self, steps: int) -> None:
        self.requested = max(int(steps), 0)
        self.steps = self.requested

    def on_fit_start(self, trainer: Any) -> None:
        total = trainer.tc.epochs * trainer.steps_per_epoch
        self.steps = min(self.requested, max(total // 10, 1)) if self.requested else 0

    def on_batch(self, trainer: Any, batch: dict[str, torch.Tensor], epoch: int, step: int) -> None:
        s = epoch * trainer.steps_per_epoch + step
        if s >= self.steps:
            return
        factor = (s + 1) / self.steps
        for group, lr in zip(trainer.optimizer.param_groups, trainer.scheduler.get_last_lr()):
            group["lr"] = lr * factor
