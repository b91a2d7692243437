"""PointNet encoder: a shared per-point MLP followed by a symmetric max pool (Qi et al., CVPR 2017).

x: (N, P, 3) -> per point h_i = MLP(p_i) with widths ``model.options.point_channels`` (default
64-128-256, each Linear -> BatchNorm -> ReLU, the last without ReLU as in the PointNet autoencoder of
Achlioptas et al.) -> g = max_i h_i: (N, C_last). The max makes the code invariant to point order.
The per-point MLP runs as matrix products on (N P, C) rows (no per-point Python loop).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nebula.errors import ConfigError
from nebula.registry import register

DEFAULT_POINT_CHANNELS = (64, 128, 256)


class PointNetEncoder(nn.Module):
    """Shared per-point MLP + max pool: (N, P, D) -> (N, out_features) with out_features = channels[-1].

    Args:
        in_dim: coordinates per point D (3).
        channels: widths of the shared MLP.
        batch_norm: BatchNorm1d over all points of the batch after each linear layer.
    """

    def __init__(self, in_dim: int, channels: list[int], batch_norm: bool = True) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = in_dim
        for i, c in enumerate(channels):
            layers.append(nn.Linear(c_in, c, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm1d(c))
            if i < len(channels) - 1:
                layers.append(nn.ReLU(inplace=True))
            c_in = c
        self.mlp = nn.Sequential(*layers)
        self.out_features = c_in

    def point_features(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, P, D) -> per-point features (N, P, C)."""
        n, p, d = x.shape
        return self.mlp(x.reshape(n * p, d)).view(n, p, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.point_features(x).amax(1)


@register("encoder", "pointnet")
def _pointnet_encoder(input_shape: tuple[int, ...], cfg: Any) -> PointNetEncoder:
    if len(input_shape) != 2 or input_shape[1] < 2:
        raise ConfigError(f"the pointnet encoder needs point clouds shaped (P, 3), found input shape {input_shape}")
    channels = [int(c) for c in cfg.options.get("point_channels", DEFAULT_POINT_CHANNELS)]
    return PointNetEncoder(int(input_shape[1]), channels, cfg.batch_norm)
