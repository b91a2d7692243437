"""Projection heads g: backbone features h (N, D) -> the space where the contrastive loss is computed.

* ``mlp``: Linear(D, D) - BN - ReLU - Linear(D, out) (SimCLR; out = 128);
* ``linear``: Linear(D, out);
* ``none``: identity, the loss sees h itself;
* ``direct``: DirectCLR, the loss sees the first ``direct_dim`` dimensions of h (no parameters).
"""

from __future__ import annotations

import torch
from torch import nn

from nebula.errors import ConfigError

HEADS = ("mlp", "linear", "none", "direct")


class DirectHead(nn.Module):
    """h (N, D) -> h[:, :d0] (DirectCLR's sub-vector)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h[:, : self.dim]


def build_head(name: str, in_features: int, out_features: int = 128, direct_dim: int = 64) -> nn.Module:
    """The projection head ``name`` (see module docstring)."""
    if name == "mlp":
        return nn.Sequential(nn.Linear(in_features, in_features, bias=False), nn.BatchNorm1d(in_features),
                             nn.ReLU(inplace=True), nn.Linear(in_features, out_features))
    if name == "linear":
        return nn.Linear(in_features, out_features)
    if name == "none":
        return nn.Identity()
    if name == "direct":
        if direct_dim > in_features:
            raise ConfigError(f"contrastive.direct_dim {direct_dim} exceeds the backbone's {in_features} features")
        return DirectHead(direct_dim)
    raise ConfigError(f"unknown projection head '{name}'; choose from {', '.join(HEADS)}")
