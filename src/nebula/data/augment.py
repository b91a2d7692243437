"""Training-time input augmentation for Nebula Variational Coding (encoder input only).

The encoder sees an augmented input and the decoder reconstructs the clean target, so the latents
become invariant to small nuisance transforms; on digits this raises the clustering accuracy of the
anchors (measured in docs/clustering.md). ``data.augment`` selects it: ``None`` takes the modality's
default, ``{}`` disables it, ``{"affine": [degrees, translate, scale]}`` sets the strengths for images.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nebula.errors import ConfigError

#: default image augmentation: rotation +-15 degrees, translation +-15 %, scale +-10 %
IMAGE_DEFAULT: dict[str, Any] = {"affine": [15.0, 0.15, 0.1]}


class ImageAffine(nn.Module):
    """x: (N, C, H, W) in [0, 1] -> random rotation/translation/scale of every image (kornia)."""

    def __init__(self, degrees: float, translate: float, scale: float) -> None:
        super().__init__()
        import kornia.augmentation as K

        self.op = K.RandomAffine(degrees=degrees, translate=(translate, translate) if translate > 0 else None,
                                 scale=(1.0 - scale, 1.0 + scale) if scale > 0 else None, p=1.0, padding_mode="zeros")

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x).clamp_(0.0, 1.0)


def build_image_augment(options: dict[str, Any] | None, input_shape: tuple[int, ...]) -> nn.Module | None:
    """The augmentation ``options`` ask for, or None; raises :class:`ConfigError` on unknown keys."""
    options = IMAGE_DEFAULT if options is None else options
    unknown = set(options) - {"affine"}
    if unknown:
        raise ConfigError(f"data.augment: unknown image augmentation(s) {sorted(unknown)}; known: affine")
    if "affine" not in options or len(input_shape) != 3:
        return None
    params = options["affine"]
    if not isinstance(params, (list, tuple)) or len(params) != 3:
        raise ConfigError(f"data.augment.affine expects [degrees, translate, scale], found {params!r}")
    return ImageAffine(*(float(p) for p in params))
