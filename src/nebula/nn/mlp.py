"""Fully connected encoder/decoder (the reference's MNIST model: 512-256-128, hidden 64)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from nebula.registry import register


def dense_block(n_in: int, n_out: int, batch_norm: bool, dropout: float) -> list[nn.Module]:
    """Linear -> [BatchNorm1d] -> ReLU -> [Dropout]."""
    layers: list[nn.Module] = [nn.Linear(n_in, n_out, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm1d(n_out))
    layers.append(nn.ReLU(inplace=True))
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return layers


class MLPEncoder(nn.Module):
    """x: (N, *input_shape) -> flatten -> hidden layers -> (N, feature_dim)."""

    def __init__(self, input_shape: tuple[int, ...], hidden: list[int], feature_dim: int,
                 batch_norm: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        sizes = [math.prod(input_shape), *hidden, feature_dim]
        layers: list[nn.Module] = [nn.Flatten()]
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += dense_block(a, b, batch_norm, dropout)
        self.net = nn.Sequential(*layers)
        self.out_features = feature_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MLPDecoder(nn.Module):
    """z: (N, in_features) -> feature_dim -> reversed hidden -> (N, *output_shape) logits."""

    def __init__(self, in_features: int, output_shape: tuple[int, ...], hidden: list[int], feature_dim: int,
                 batch_norm: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        sizes = [in_features, feature_dim, *reversed(hidden)]
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += dense_block(a, b, batch_norm, dropout)
        layers.append(nn.Linear(sizes[-1], math.prod(output_shape)))
        self.net = nn.Sequential(*layers)
        self.output_shape = output_shape

    def forward(self, z: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z).view(z.shape[0], *self.output_shape)


@register("encoder", "mlp")
def _mlp_encoder(input_shape: tuple[int, ...], cfg: Any) -> MLPEncoder:
    return MLPEncoder(input_shape, list(cfg.hidden), cfg.feature_dim, cfg.batch_norm, cfg.dropout)


@register("decoder", "mlp")
def _mlp_decoder(in_features: int, output_shape: tuple[int, ...], cfg: Any, encoder: nn.Module) -> MLPDecoder:
    return MLPDecoder(in_features, output_shape, list(cfg.hidden), cfg.feature_dim, cfg.batch_norm, cfg.dropout)
