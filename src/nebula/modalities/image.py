"""Images (N, C, H, W) and tabular vectors (as (N, 1, 1, F) images): MLP by default (-c conv, -c -f fire),
BCE reconstruction, a small random affine augmentation, anchors placed on a t-SNE map of the inputs
(or of the latents) whose parts label the anchor terms (weighted ``loss.partition_weight``)."""

from __future__ import annotations

from typing import Any

from nebula.modalities.record import Modality, register_modality


def image_augment(options: dict[str, Any] | None, input_shape: tuple[int, ...]) -> Any:
    from nebula.data.augment import build_image_augment

    return build_image_augment(options, input_shape)


IMAGE = register_modality(Modality(
    "image", encoder="mlp", decoder="auto", reconstruction="bce",
    augment=image_augment, renderer="image", anchor_init="tsne"))
