"""Reconstruction losses, each per sample: ``loss(output, target) -> (N,)`` summed over elements.

A registered :class:`Reconstruction` pairs the loss with the map from decoder output to data space
(``sigmoid`` for BCE-with-logits, identity for MSE), used to draw and measure reconstructions.
Modalities add their own (chamfer for point clouds, voxel BCE, token cross-entropy) in a module of
this package that registers them with :func:`register_reconstruction` (the registry's built-ins).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nebula.losses.reconstruction import Reconstruction, identity, register_reconstruction
from nebula.registry import Registry

__all__ = ["RECONSTRUCTIONS", "Reconstruction", "get_reconstruction", "identity", "register_reconstruction"]


def _builtins() -> None:
    """The modules of this package that register further losses."""
    from nebula.losses import bow, chamfer, token, voxel  # noqa: F401


#: name -> :class:`Reconstruction`
RECONSTRUCTIONS: Registry[Reconstruction] = Registry("reconstruction loss", _builtins)


def get_reconstruction(name: str) -> Reconstruction:
    return RECONSTRUCTIONS.lookup(name)


@register_reconstruction("bce", to_data=torch.sigmoid)
def bce_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy with logits for targets in [0, 1], summed per sample: (N,)."""
    return F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(1).sum(1)


@register_reconstruction("mse")
def mse_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared error summed per sample: (N,)."""
    return (output - target).pow(2).flatten(1).sum(1)

