"""Point-cloud decoders: an MLP to P x 3 and a FoldingNet-style folding decoder.

``point-mlp``: z (N, d) -> Linear/BN/ReLU widths ``model.options.point_decoder_hidden`` (256-512)
-> Linear to P*3 -> (N, P, 3) (Achlioptas et al., ICML 2018).

``folding`` (Yang et al., CVPR 2018): a fixed 2-D grid G of P points in [-1, 1]^2 is folded twice,
    y1_j = MLP_1([z, g_j]),  y2_j = y1_j + MLP_2([z, y1_j])   -> (N, P, 3)
with MLP widths ``model.options.fold_hidden`` (64-64) and a linear output. The first layer of each
fold is split as W [z, u] = W_z z + W_u u so the latent part is computed once per cloud, not per point.
The second fold predicts a residual on the first fold's points.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from nebula.errors import ConfigError
from nebula.nn.mlp import dense_block
from nebula.registry import register

DEFAULT_DECODER_HIDDEN = (256, 512)
DEFAULT_FOLD_HIDDEN = (64, 64)


class PointMLPDecoder(nn.Module):
    """z: (N, in_features) -> (N, P, 3) by a fully connected network."""

    def __init__(self, in_features: int, output_shape: tuple[int, ...], hidden: list[int], batch_norm: bool = True) -> None:
        super().__init__()
        sizes = [in_features, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += dense_block(a, b, batch_norm, 0.0)
        layers.append(nn.Linear(sizes[-1], math.prod(output_shape)))
        self.net = nn.Sequential(*layers)
        self.output_shape = tuple(output_shape)

    def forward(self, z: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z).view(z.shape[0], *self.output_shape)


def square_grid(num_points: int) -> torch.Tensor:
    """P points of a near-square 2-D grid in [-1, 1]^2: (P, 2) (rows x cols >= P, truncated to P)."""
    rows = int(math.floor(math.sqrt(num_points)))
    cols = int(math.ceil(num_points / rows))
    u = torch.linspace(-1.0, 1.0, rows)
    v = torch.linspace(-1.0, 1.0, cols)
    grid = torch.stack(torch.meshgrid(u, v, indexing="ij"), dim=-1).reshape(-1, 2)
    return grid[:num_points].contiguous()


class Fold(nn.Module):
    """One folding MLP: ([z, u_j]) -> 3 for every point j, with the z part of the first layer shared."""

    def __init__(self, latent: int, point_dim: int, hidden: list[int]) -> None:
        super().__init__()
        self.lat = nn.Linear(latent, hidden[0])
        self.pt = nn.Linear(point_dim, hidden[0], bias=False)
        layers: list[nn.Module] = [nn.ReLU(inplace=True)]
        for a, b in zip(hidden[:-1], hidden[1:]):
            layers += [nn.Linear(a, b), nn.ReLU(inplace=True)]
        layers.append(nn.Linear(hidden[-1], 3))
        self.rest = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """z: (N, d), u: (N or 1, P, k) -> (N, P, 3)."""
        h = self.lat(z).unsqueeze(1) + self.pt(u)
        return self.rest(h)


class FoldingDecoder(nn.Module):
    """z: (N, in_features) -> (N, P, 3) by two folds of a fixed 2-D grid (module docstring)."""

    def __init__(self, in_features: int, output_shape: tuple[int, ...], hidden: list[int]) -> None:
        super().__init__()
        num_points = int(output_shape[0])
        self.register_buffer("grid", square_grid(num_points).unsqueeze(0), persistent=False)
        self.fold1 = Fold(in_features, 2, hidden)
        self.fold2 = Fold(in_features, 3, hidden)
        self.output_shape = tuple(output_shape)

    def forward(self, z: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        first = self.fold1(z, self.grid)
        return first + self.fold2(z, first)


def _check(output_shape: tuple[int, ...], name: str) -> None:
    if len(output_shape) != 2 or output_shape[1] != 3:
        raise ConfigError(f"the {name} decoder outputs point clouds (P, 3), found target shape {output_shape}")


@register("decoder", "point-mlp")
def _point_mlp_decoder(in_features: int, output_shape: tuple[int, ...], cfg: Any, encoder: nn.Module) -> PointMLPDecoder:
    _check(output_shape, "point-mlp")
    hidden = [int(h) for h in cfg.options.get("point_decoder_hidden", DEFAULT_DECODER_HIDDEN)]
    return PointMLPDecoder(in_features, output_shape, hidden, cfg.batch_norm)


@register("decoder", "folding")
def _folding_decoder(in_features: int, output_shape: tuple[int, ...], cfg: Any, encoder: nn.Module) -> FoldingDecoder:
    _check(output_shape, "folding")
    hidden = [int(h) for h in cfg.options.get("fold_hidden", DEFAULT_FOLD_HIDDEN)]
    return FoldingDecoder(in_features, output_shape, hidden)
