"""Callbacks: what runs around the training loop besides the optimiser step.

The trainer calls, in list order: ``on_fit_start`` once (after a resume is restored), per epoch
``on_epoch_start``, per step ``on_batch`` (may add tensors to the batch) and ``on_step_end``, then
``on_epoch_end`` (may add columns to the epoch's row; loggers run last and write it), ``on_checkpoint``
(may add entries to the checkpoint) and at the end ``on_fit_end`` (also when training stops with an
error or a signal, so loggers close their files). ``on_resume`` reads what
``on_checkpoint`` wrote. A method's callbacks (NVC: anchor placement, dead anchors, neighbour views)
come first, then the loggers, then the user's. Every hook receives the trainer, whose public
attributes (``model``, ``x``, ``train_index``, ``embed``, ``dist``, ``history``, ``log``, ``run_dir``,
``sums``) are what a callback may use.
"""

from __future__ import annotations

from typing import Any

import torch


class Callback:
    """Base class: every hook does nothing. ``epoch`` and ``step`` are 0-based."""

    def on_fit_start(self, trainer: Any) -> None:
        """Before the first epoch of this session (after a resume was restored)."""

    def on_epoch_start(self, trainer: Any, epoch: int, resumed: bool) -> None:
        """Before the first step of ``epoch``; ``resumed``: the epoch continues an interrupted one."""

    def on_batch(self, trainer: Any, batch: dict[str, torch.Tensor], epoch: int, step: int) -> None:
        """Before the forward pass; may add entries to ``batch``."""

    def on_step_end(self, trainer: Any, epoch: int, step: int, out: Any) -> None:
        """After the optimiser step; ``out`` is the step's ModelOutput."""

    def on_epoch_end(self, trainer: Any, epoch: int, row: dict[str, Any]) -> None:
        """After the last step of ``epoch``; may add columns to ``row`` (the metrics.csv row)."""

    def on_checkpoint(self, trainer: Any, state: dict[str, Any]) -> None:
        """When a checkpoint is taken; may add entries to ``state`` (tensors, numbers, strings)."""

    def on_resume(self, trainer: Any, state: dict[str, Any]) -> None:
        """When training resumes from ``state`` (a checkpoint this callback's ``on_checkpoint`` may have filled)."""

    def on_evaluate(self, trainer: Any, epoch: int, metrics: dict[str, float]) -> None:
        """When a periodic evaluation produced ``metrics`` (see :class:`nebula.train.periodic.PeriodicEvaluation`)."""

    def on_fit_end(self, trainer: Any) -> None:
        """After the last epoch, or when training stops with an error or a signal."""


class CallbackList:
    """Calls each hook on every callback in order."""

    def __init__(self, callbacks: list[Callback]) -> None:
        self.callbacks = list(callbacks)
        # per-step hooks only on the callbacks that override them (two calls a step otherwise)
        self._on_batch = [c for c in self.callbacks if type(c).on_batch is not Callback.on_batch]
        self._on_step_end = [c for c in self.callbacks if type(c).on_step_end is not Callback.on_step_end]

    def __iter__(self):
        return iter(self.callbacks)

    def fit_start(self, trainer: Any) -> None:
        for c in self.callbacks:
            c.on_fit_start(trainer)

    def epoch_start(self, trainer: Any, epoch: int, resumed: bool) -> None:
        for c in self.callbacks:
            c.on_epoch_start(trainer, epoch, resumed)

    def batch(self, trainer: Any, batch: dict[str, torch.Tensor], epoch: int, step: int) -> None:
        for c in self._on_batch:
            c.on_batch(trainer, batch, epoch, step)

    def step_end(self, trainer: Any, epoch: int, step: int, out: Any) -> None:
        for c in self._on_step_end:
            c.on_step_end(trainer, epoch, step, out)

    def epoch_end(self, trainer: Any, epoch: int, row: dict[str, Any]) -> None:
        for c in self.callbacks:
            c.on_epoch_end(trainer, epoch, row)

    def checkpoint(self, trainer: Any, state: dict[str, Any]) -> None:
        for c in self.callbacks:
            c.on_checkpoint(trainer, state)

    def resume(self, trainer: Any, state: dict[str, Any]) -> None:
        for c in self.callbacks:
            c.on_resume(trainer, state)

    def evaluate(self, trainer: Any, epoch: int, metrics: dict[str, float]) -> None:
        for c in self.callbacks:
            c.on_evaluate(trainer, epoch, metrics)

    def fit_end(self, trainer: Any) -> None:
        for c in self.callbacks:
            c.on_fit_end(trainer)
