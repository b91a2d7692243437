"""Encoder and decoder families, built by name from a registry.

Contract:
    encoder = build_encoder(name, input_shape, cfg)      # nn.Module with int attribute ``out_features``
    h = encoder(x)                                       # x: (N, *input_shape) -> h: (N, out_features)
    decoder = build_decoder(name, in_features, output_shape, cfg, encoder)
    out = decoder(z, target)                             # z: (N, in_features) -> (N, *output_shape)

Decoders return unnormalised outputs (logits for BCE-type losses); ``target`` is only used by decoders
that need it (teacher forcing for sequences) and may be None at generation time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from nebula.errors import ConfigError, did_you_mean

EncoderBuilder = Callable[..., nn.Module]
DecoderBuilder = Callable[..., nn.Module]

ENCODERS: dict[str, EncoderBuilder] = {}
DECODERS: dict[str, DecoderBuilder] = {}


def register_encoder(name: str) -> Callable[[EncoderBuilder], EncoderBuilder]:
    """Register ``builder(input_shape, cfg) -> encoder``."""

    def wrap(fn: EncoderBuilder) -> EncoderBuilder:
        ENCODERS[name] = fn
        return fn

    return wrap


def register_decoder(name: str) -> Callable[[DecoderBuilder], DecoderBuilder]:
    """Register ``builder(in_features, output_shape, cfg, encoder) -> decoder``."""

    def wrap(fn: DecoderBuilder) -> DecoderBuilder:
        DECODERS[name] = fn
        return fn

    return wrap


def build_encoder(name: str, input_shape: tuple[int, ...], cfg: Any) -> nn.Module:
    if name not in ENCODERS:
        raise ConfigError(f"unknown encoder '{name}'{did_you_mean(name, ENCODERS)}; known: {', '.join(sorted(ENCODERS))}")
    return ENCODERS[name](tuple(input_shape), cfg)


def build_decoder(name: str, in_features: int, output_shape: tuple[int, ...], cfg: Any, encoder: nn.Module) -> nn.Module:
    if name not in DECODERS:
        raise ConfigError(f"unknown decoder '{name}'{did_you_mean(name, DECODERS)}; known: {', '.join(sorted(DECODERS))}")
    return DECODERS[name](in_features, tuple(output_shape), cfg, encoder)


def _register_builtin() -> None:
    import importlib

    for module in ("mlp", "conv", "sequence", "pointnet", "folding"):
        importlib.import_module(f"nebula.nn.{module}")


_register_builtin()
