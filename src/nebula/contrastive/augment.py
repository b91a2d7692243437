"""Seeded two-view image augmentations on tensors (kornia), made on the training device.

A :class:`TwoViewAugment` turns a batch x (N, C, H, W) in [0, 1] into two independently augmented views
(each (N, C, H, W)): random resized crop, small affine (rotation, translation, shear), colour jitter
(colour images only), Gaussian noise and random erasing. Parameters are drawn inside a forked torch RNG
seeded from the caller's generator, so a run's views are reproducible and do not disturb other RNG users.
"""

from __future__ import annotations

from dataclasses import dataclass

import kornia.augmentation as K
import torch
from torch import nn


@dataclass
class AugmentOptions:
    """Strengths of each augmentation (0 disables one)."""

    crop_scale: float = 0.6
    rotation: float = 12.0
    translate: float = 0.1
    shear: float = 8.0
    noise_std: float = 0.05
    erase_p: float = 0.25
    jitter: float = 0.4
    jitter_p: float = 0.8
    grayscale_p: float = 0.2


def build_pipeline(channels: int, size: tuple[int, int], opt: AugmentOptions) -> nn.Sequential:
    """The kornia pipeline for images of ``channels`` and spatial ``size`` (H, W)."""
    ops: list[nn.Module] = []
    if opt.crop_scale < 1.0:
        ops.append(K.RandomResizedCrop(size, scale=(opt.crop_scale, 1.0), ratio=(0.8, 1.25), p=1.0))
    if opt.rotation > 0 or opt.translate > 0 or opt.shear > 0:
        ops.append(K.RandomAffine(degrees=opt.rotation, translate=(opt.translate, opt.translate) if opt.translate > 0 else None,
                                  shear=opt.shear if opt.shear > 0 else None, p=0.8, padding_mode="zeros"))
    if channels == 3 and opt.jitter > 0:
        j = opt.jitter
        ops.append(K.ColorJitter(j, j, j, min(0.5 * j, 0.5), p=opt.jitter_p))
        if opt.grayscale_p > 0:
            ops.append(K.RandomGrayscale(p=opt.grayscale_p))
    if opt.noise_std > 0:
        ops.append(K.RandomGaussianNoise(mean=0.0, std=opt.noise_std, p=0.5))
    if opt.erase_p > 0:
        ops.append(K.RandomErasing(scale=(0.02, 0.15), ratio=(0.3, 3.3), value=0.0, p=opt.erase_p))
    return nn.Sequential(*ops)


class TwoViewAugment(nn.Module):
    """x: (N, C, H, W) -> (view0, view1), two independent augmentations of every sample.

    Args:
        input_shape: (C, H, W) of one sample.
        options: augmentation strengths.
    """

    def __init__(self, input_shape: tuple[int, ...], options: AugmentOptions | None = None) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(f"two-view augmentation needs images (C, H, W), found shape {tuple(input_shape)}")
        self.options = options or AugmentOptions()
        self.pipeline = build_pipeline(int(input_shape[0]), (int(input_shape[1]), int(input_shape[2])), self.options)

    def view(self, x: torch.Tensor) -> torch.Tensor:
        """One augmented view (N, C, H, W), clamped to [0, 1]."""
        return self.pipeline(x).clamp_(0.0, 1.0)

    @torch.no_grad()
    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        seed = int(torch.randint(0, 2**62, (1,), generator=generator)) if generator is not None else None
        both = torch.cat([x, x], dim=0)
        if seed is None:
            out = self.view(both)
        else:
            devices = [x.device] if x.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed)
                out = self.view(both)
        return out[: len(x)], out[len(x) :]
