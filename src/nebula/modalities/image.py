"""Images (N, C, H, W) and tabular vectors (as (N, 1, 1, F) images): with ``model.arch = auto`` the conv encoder
for images whose sides are all at least :data:`CONV_MIN_SIDE` (three stride-2 blocks still leave 2x2), the MLP
below that (8x8 digits, tabular rows); -c asks for conv, -c -f for fire;
BCE reconstruction, a small random affine augmentation, anchors placed on a t-SNE map of the inputs
(or of the latents) whose parts label the anchor terms (weighted ``loss.partition_weight``)."""

from __future__ import annotations

from typing import Any

from nebula.modalities.record import Modality, register_modality

#: the smallest image side for which ``model.arch = auto`` picks the conv encoder (docs/clustering.md: on 16x16
#: USPS conv reaches 0.975 ACC where the MLP reaches 0.807)
CONV_MIN_SIDE = 16


def choose_image_encoder(input_shape: tuple[int, ...]) -> str:
    """``conv`` for (C, H, W) inputs with min(H, W) >= :data:`CONV_MIN_SIDE`, else ``mlp``."""
    return "conv" if len(input_shape) == 3 and min(input_shape[1:]) >= CONV_MIN_SIDE else "mlp"


def image_augment(options: dict[str, Any] | None, input_shape: tuple[int, ...]) -> Any:
    from nebula.data.augment import build_image_augment

    return build_image_augment(options, input_shape)


IMAGE = register_modality(Modality(
    "image", encoder="mlp", decoder="auto", reconstruction="bce",
    augment=image_augment, renderer="image", anchor_init="tsne",
    choose_encoder=choose_image_encoder))
