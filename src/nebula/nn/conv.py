"""Strided convolutional encoders/decoders for images (2D) and voxel grids (3D).

Block ``conv``: Conv(k=4, s=2, p=1) -> BN -> ReLU, halving each spatial side (the reference's -c).
Block ``fire``: a stride-2 :class:`~nebula.nn.fire.Fire` module (the reference's -c -f).
The decoder mirrors the encoder's recorded spatial sizes exactly, so any input size works.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from nebula.errors import ConfigError
from nebula.nn.fire import Fire, FireTranspose, conv_layers
from nebula.nn.mlp import dense_block
from nebula.registry import register


def _down(n: int, block: str) -> int:
    return n // 2 if block == "conv" else (n + 1) // 2


class ConvEncoder(nn.Module):
    """x: (N, C, *S) -> stride-2 blocks -> flatten -> Linear -> (N, feature_dim).

    Attributes ``sizes`` (spatial size before each block and after the last) are what the decoder
    mirrors.
    """

    def __init__(self, input_shape: tuple[int, ...], channels: list[int], feature_dim: int, block: str = "conv",
                 batch_norm: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        dims = len(input_shape) - 1
        conv, _, bn = conv_layers(dims)
        sizes = [list(input_shape[1:])]
        for _ in channels:
            nxt = [_down(s, block) for s in sizes[-1]]
            if min(nxt) < 1:
                side = "x".join(map(str, input_shape[1:]))
                raise ConfigError(
                    f"input of size {side} is too small for {len(channels)} stride-2 {block} layers "
                    f"(each halves the size; use fewer model.channels or larger inputs)")
            sizes.append(nxt)
        blocks: list[nn.Module] = []
        c_in = input_shape[0]
        for c in channels:
            if block == "fire":
                blocks.append(Fire(c_in, c, stride=2, dims=dims, batch_norm=batch_norm))
            else:
                layer: list[nn.Module] = [conv(c_in, c, 4, stride=2, padding=1, bias=not batch_norm)]
                if batch_norm:
                    layer.append(bn(c))
                layer.append(nn.ReLU(inplace=True))
                blocks.append(nn.Sequential(*layer))
            c_in = c
        self.blocks = nn.Sequential(*blocks)
        self.sizes = sizes
        self.channels = list(channels)
        self.flat = c_in * math.prod(sizes[-1])
        self.head = nn.Sequential(nn.Flatten(), *dense_block(self.flat, feature_dim, batch_norm, dropout))
        self.out_features = feature_dim
        self.block = block
        self.dims = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x))


class ConvDecoder(nn.Module):
    """z: (N, in_features) -> Linear -> (C_last, *S_last) -> transposed blocks -> (N, *output_shape)."""

    def __init__(self, in_features: int, output_shape: tuple[int, ...], encoder: ConvEncoder, feature_dim: int,
                 batch_norm: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        dims = encoder.dims
        _, tconv, bn = conv_layers(dims)
        self.sizes = encoder.sizes
        chans = encoder.channels
        self.start = (chans[-1], *self.sizes[-1])
        self.fc = nn.Sequential(*dense_block(in_features, feature_dim, batch_norm, dropout),
                                *dense_block(feature_dim, encoder.flat, batch_norm, dropout))
        outs = [*reversed(chans[:-1]), output_shape[0]]
        self.blocks = nn.ModuleList()
        c_in = chans[-1]
        for i, c in enumerate(outs):
            last = i == len(outs) - 1
            if encoder.block == "fire" and not last:
                self.blocks.append(FireTranspose(c_in, c, stride=2, dims=dims, batch_norm=batch_norm))
            else:
                layer = nn.ModuleList([tconv(c_in, c, 4, stride=2, padding=1)])
                if not last:
                    layer.extend([bn(c) if batch_norm else nn.Identity(), nn.ReLU(inplace=True)])
                self.blocks.append(layer)
            c_in = c

    def forward(self, z: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        h = self.fc(z).view(z.shape[0], *self.start)
        for i, block in enumerate(self.blocks):
            size = self.sizes[-2 - i]
            if isinstance(block, FireTranspose):
                h = block(h, output_size=size)
            else:
                h = block[0](h, output_size=size)
                for layer in block[1:]:
                    h = layer(h)
        return h



@register("encoder", "conv")
def _conv_encoder(input_shape: tuple[int, ...], cfg: Any) -> ConvEncoder:
    return ConvEncoder(input_shape, list(cfg.channels), cfg.feature_dim, "conv", cfg.batch_norm, cfg.dropout)


@register("encoder", "fire")
def _fire_encoder(input_shape: tuple[int, ...], cfg: Any) -> ConvEncoder:
    return ConvEncoder(input_shape, list(cfg.channels), cfg.feature_dim, "fire", cfg.batch_norm, cfg.dropout)


@register("decoder", "conv")
@register("decoder", "fire")
def _conv_decoder(in_features: int, output_shape: tuple[int, ...], cfg: Any, encoder: nn.Module) -> ConvDecoder:
    if not isinstance(encoder, ConvEncoder):
        raise ConfigError("the conv/fire decoder mirrors a conv/fire encoder; set model.decoder to match model.arch")
    return ConvDecoder(in_features, output_shape, encoder, cfg.feature_dim, cfg.batch_norm, cfg.dropout)
