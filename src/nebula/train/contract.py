"""The method contract: all that the trainer knows of a method.

A method's model is an ``nn.Module`` with

* ``forward(batch, info) -> ModelOutput``: ``batch`` maps names to tensors (``x`` (B, *input_shape),
  ``index`` (B,), and ``target``, ``y`` and what callbacks add, e.g. NVC's ``x_nb``); ``info`` is a
  :class:`StepInfo`;
* ``embed(x) -> (N, d)``: the representation that evaluation and the run folder use;
* ``embedding_batch(x, target) -> {name: (N, ...)}``: the per-sample arrays ``embeddings.npz`` stores
  (``z`` and ``assign`` at least).

and may define the optional hooks of :class:`Method`: ``param_groups(lr, weight_decay)`` (optimiser
groups), ``callbacks()`` (the method's own :class:`~nebula.train.callbacks.Callback` objects, run before
the loggers) and ``anchor_array()`` ((m, d) anchors for the run folder, or None).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch


@dataclass
class StepInfo:
    """Where training is, passed to ``forward`` for warm-ups and schedules: global step = epoch * steps_per_epoch + step."""

    epoch: int = 0
    step: int = 0
    steps_per_epoch: int = 1

    @property
    def global_step(self) -> int:
        return self.epoch * self.steps_per_epoch + self.step


@dataclass
class ModelOutput:
    """Everything a forward pass produces.

    loss: scalar total that is back-propagated; terms: name -> scalar (unweighted terms, logged per
    epoch); z, mu: (N, d) latent sample and mean (None where a method has no such notion);
    output: decoder output (N, *target_shape) or None; pseudo_labels: (N * views,) the labels the
    method's label-driven terms used this step (NVC: nearest-anchor pseudo-labels of every view), or None.
    """

    loss: torch.Tensor
    terms: dict[str, torch.Tensor] = field(default_factory=dict)
    z: torch.Tensor | None = None
    mu: torch.Tensor | None = None
    output: torch.Tensor | None = None
    pseudo_labels: torch.Tensor | None = None


@runtime_checkable
class Method(Protocol):
    """The required part of the contract (see the module docstring for the optional hooks)."""

    def forward(self, batch: dict[str, torch.Tensor], info: StepInfo) -> ModelOutput: ...

    def embed(self, x: torch.Tensor) -> torch.Tensor: ...

    def embedding_batch(self, x: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]: ...


def optional_hook(model: Any, name: str) -> Any:
    """The model's optional hook ``name`` (param_groups, callbacks, anchor_array), or None."""
    return getattr(model, name, None)
