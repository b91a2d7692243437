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

from nebula.registry import Registry

EncoderBuilder = Callable[..., nn.Module]
DecoderBuilder = Callable[..., nn.Module]



def _builtins() -> None:
    """The modules of this package that register encoders and decoders (with ``@register("encoder", name)``)."""
    from nebula.nn import bow, conv, folding, mlp, pointnet, sequence  # noqa: F401


#: name -> ``builder(input_shape, cfg) -> encoder``
ENCODERS: Registry[EncoderBuilder] = Registry("encoder", _builtins)
#: name -> ``builder(in_features, output_shape, cfg, encoder) -> decoder``
DECODERS: Registry[DecoderBuilder] = Registry("decoder", _builtins)
register_encoder = ENCODERS.register
register_decoder = DECODERS.register


def build_encoder(name: str, input_shape: tuple[int, ...], cfg: Any) -> nn.Module:
    return ENCODERS.lookup(name)(tuple(input_shape), cfg)


def build_decoder(name: str, in_features: int, output_shape: tuple[int, ...], cfg: Any, encoder: nn.Module) -> nn.Module:
    return DECODERS.lookup(name)(in_features, tuple(output_shape), cfg, encoder)
