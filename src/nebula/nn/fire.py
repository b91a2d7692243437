"""SqueezeNet fire modules for 2D images and 3D volumes (encoder and transposed decoder forms).

Fire(C_in -> C): squeeze 1x1 to C/4, then parallel 1x1 and 3x3 expands to C/2 each, concatenated.
Unlike the reference, every conv is followed by batch norm and a ReLU (the reference has no
nonlinearity inside the module). ``stride=2`` downsamples in the expand convs (encoder) or upsamples
with transposed expand convs (decoder).
"""

from __future__ import annotations

import torch
from torch import nn


def conv_layers(dims: int) -> tuple[type[nn.Module], type[nn.Module], type[nn.Module]]:
    """(Conv, ConvTranspose, BatchNorm) classes for 2D or 3D data."""
    if dims == 2:
        return nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d
    if dims == 3:
        return nn.Conv3d, nn.ConvTranspose3d, nn.BatchNorm3d
    raise ValueError(f"dims must be 2 or 3, found {dims}")


class Fire(nn.Module):
    """x: (N, C_in, *S) -> (N, C, *S') with S' = ceil(S / stride)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, dims: int = 2, batch_norm: bool = True) -> None:
        super().__init__()
        conv, _, bn = conv_layers(dims)
        squeeze, half = max(c_out // 4, 1), c_out // 2
        norm = (lambda c: bn(c)) if batch_norm else (lambda c: nn.Identity())
        self.squeeze = nn.Sequential(conv(c_in, squeeze, 1), norm(squeeze), nn.ReLU(inplace=True))
        self.expand1 = nn.Sequential(conv(squeeze, half, 1, stride=stride), norm(half), nn.ReLU(inplace=True))
        self.expand3 = nn.Sequential(conv(squeeze, c_out - half, 3, stride=stride, padding=1), norm(c_out - half), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.squeeze(x)
        return torch.cat([self.expand1(s), self.expand3(s)], dim=1)


class FireTranspose(nn.Module):
    """Decoder mirror of :class:`Fire`: transposed expands; ``output_size`` fixes the spatial size."""

    def __init__(self, c_in: int, c_out: int, stride: int = 2, dims: int = 2, batch_norm: bool = True) -> None:
        super().__init__()
        conv, tconv, bn = conv_layers(dims)
        squeeze, half = max(c_out // 4, 1), c_out // 2
        norm = (lambda c: bn(c)) if batch_norm else (lambda c: nn.Identity())
        self.squeeze = nn.Sequential(conv(c_in, squeeze, 1), norm(squeeze), nn.ReLU(inplace=True))
        self.expand1 = tconv(squeeze, half, 1, stride=stride)
        self.expand3 = tconv(squeeze, c_out - half, 3, stride=stride, padding=1)
        self.post = nn.Sequential(norm(c_out), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor, output_size: list[int]) -> torch.Tensor:
        s = self.squeeze(x)
        out = torch.cat([self.expand1(s, output_size=output_size), self.expand3(s, output_size=output_size)], dim=1)
        return self.post(out)
