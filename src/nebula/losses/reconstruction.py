"""The reconstruction-loss record and its registration (``@register_reconstruction(name, to_data)``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from nebula.registry import register


@dataclass(frozen=True)
class Reconstruction:
    name: str
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    to_data: Callable[[torch.Tensor], torch.Tensor]


def identity(t: torch.Tensor) -> torch.Tensor:
    return t


def register_reconstruction(name: str, to_data: Callable[[torch.Tensor], torch.Tensor] = identity):
    """Decorator registering ``loss(output, target) -> (N,)`` under ``name``."""

    def wrap(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]):
        register("reconstruction loss", name, Reconstruction(name, fn, to_data))
        return fn

    return wrap
