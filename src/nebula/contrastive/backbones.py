"""Backbones for contrastive learning: x (N, C, H, W) -> features h (N, out_features).

* ``cnn`` (default, 8x8..32x32 images): 3x3 conv-BN-ReLU stages, a stride-2 conv between stages, global
  average pooling. Channels-last memory format is used on CPU/GPU where it is faster.
* ``resnet18``: ResNet-18 with the CIFAR stem (3x3 conv, stride 1, no max-pool), 512 features.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from nebula.errors import ConfigError
from nebula.registry import Registry

#: name -> ``builder(input_shape, channels) -> nn.Module`` with ``out_features``
BACKBONES: Registry[Callable[..., nn.Module]] = Registry("backbone")
register_backbone = BACKBONES.register


def build_backbone(name: str, input_shape: tuple[int, ...], channels: list[int]) -> nn.Module:
    """The backbone ``name`` for images of ``input_shape`` (C, H, W); ``channels`` sizes the small CNN."""
    build = BACKBONES.lookup(name)
    if len(input_shape) != 3:
        raise ConfigError(f"contrastive backbones need images (C, H, W), found sample shape {tuple(input_shape)}")
    return build(tuple(input_shape), list(channels))


def _conv_bn(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True))


class SmallCNN(nn.Module):
    """One stage per entry of ``channels``: a conv3x3-BN-ReLU (stride 2 except the first stage) followed by
    ``depth - 1`` stride-1 conv3x3-BN-ReLU; global average pooling. (N, C, H, W) -> (N, channels[-1]).
    With channels [32, 64, 128] on 16x16 inputs the sides are 16 -> 8 -> 4 (about 2.4M multiply-adds per
    image at depth 1)."""

    def __init__(self, input_shape: tuple[int, ...], channels: list[int], depth: int = 1) -> None:
        super().__init__()
        if not channels:
            raise ConfigError("contrastive.channels must list at least one width, found []")
        layers: list[nn.Module] = []
        c_in, side = input_shape[0], min(input_shape[1:])
        for i, c in enumerate(channels):
            stride = 1 if i == 0 or side < 4 else 2
            side = side // stride
            layers += [_conv_bn(c_in, c, stride)] + [_conv_bn(c, c) for _ in range(depth - 1)]
            c_in = c
        self.features = nn.Sequential(*layers)
        self.out_features = channels[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x.contiguous(memory_format=torch.channels_last)).mean(dim=(2, 3))


@register_backbone("cnn")
def _cnn(input_shape: tuple[int, ...], channels: list[int]) -> nn.Module:
    return SmallCNN(input_shape, channels)


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out))
        self.shortcut = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 with the CIFAR stem: conv3x3(64, stride 1) - BN - ReLU, no max-pool, then 4 stages of two
    basic blocks (64, 128, 256, 512; stride 2 from the second), global average pooling -> (N, 512)."""

    def __init__(self, input_shape: tuple[int, ...], widths: tuple[int, ...] = (64, 128, 256, 512)) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(input_shape[0], widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]),
                                  nn.ReLU(inplace=True))
        blocks: list[nn.Module] = []
        c_in = widths[0]
        for i, w in enumerate(widths):
            blocks += [BasicBlock(c_in, w, 1 if i == 0 else 2), BasicBlock(w, w, 1)]
            c_in = w
        self.blocks = nn.Sequential(*blocks)
        self.out_features = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x.contiguous(memory_format=torch.channels_last))).mean(dim=(2, 3))


@register_backbone("resnet18")
def _resnet18(input_shape: tuple[int, ...], channels: list[int]) -> nn.Module:  # noqa: ARG001 - fixed widths
    return ResNet18(input_shape)
