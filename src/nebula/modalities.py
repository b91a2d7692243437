"""Modalities: the default encoder, decoder and reconstruction loss of each kind of data.

A modality is a pair (encoder, decoder) plus a reconstruction loss and its loaders (registered in
``nebula.data``). ``model.arch = auto`` takes the modality's default; the reference's -c / -f flags
ask for the ``conv`` / ``fire`` families, which are dimension-generic (2D images, 3D voxels).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nebula.errors import ConfigError, did_you_mean


@dataclass(frozen=True)
class Modality:
    name: str
    encoder: str
    decoder: str
    reconstruction: str
    #: fills data-derived model options (e.g. vocabulary size) into ``model.options`` before building
    configure: Callable[[Any, dict[str, Any]], None] | None = None
    #: builds the training-time input augmentation from ``data.augment`` and the input shape (or None)
    augment: Callable[[dict[str, Any] | None, tuple[int, ...]], Any] | None = None
    #: anchor placement for ``train.anchor_init = auto`` (nebula.latent.placement)
    anchor_init: str = "kmeans"


MODALITIES: dict[str, Modality] = {}


def register_modality(modality: Modality) -> Modality:
    MODALITIES[modality.name] = modality
    return modality


def _image_augment(options: dict[str, Any] | None, input_shape: tuple[int, ...]) -> Any:
    from nebula.data.augment import build_image_augment

    return build_image_augment(options, input_shape)


register_modality(Modality("image", encoder="mlp", decoder="auto", reconstruction="bce", augment=_image_augment,
                           anchor_init="tsne"))


def resolve_architecture(modality: str, arch: str, decoder: str, reconstruction: str) -> tuple[str, str, str]:
    """(encoder, decoder, reconstruction) names with every ``auto`` resolved for ``modality``."""
    if modality not in MODALITIES:
        raise ConfigError(f"unknown modality '{modality}'{did_you_mean(modality, MODALITIES)}; known: {', '.join(sorted(MODALITIES))}")
    spec = MODALITIES[modality]
    enc = spec.encoder if arch == "auto" else arch
    if decoder == "auto":
        dec = spec.decoder if spec.decoder != "auto" and arch == "auto" else enc
    else:
        dec = decoder
    rec = spec.reconstruction if reconstruction == "auto" else reconstruction
    return enc, dec, rec


def resolve_anchor_init(modality: str, anchor_init: str) -> str:
    """``train.anchor_init`` with ``auto`` resolved to the modality's default."""
    if anchor_init != "auto":
        return anchor_init
    spec = MODALITIES.get(modality)
    return spec.anchor_init if spec is not None else "kmeans"


def configure_model(model_cfg: Any, modality: str, meta: dict[str, Any]) -> None:
    """Let the modality record data-derived options (saved with the run's config)."""
    spec = MODALITIES.get(modality)
    if spec is not None and spec.configure is not None:
        spec.configure(model_cfg, meta)


def build_augment(modality: str, options: dict[str, Any] | None, input_shape: tuple[int, ...]) -> Any:
    """The modality's training-time augmentation module for ``data.augment`` (None when it has none)."""
    spec = MODALITIES.get(modality)
    if spec is None or spec.augment is None:
        if options:
            raise ConfigError(f"data.augment: modality '{modality}' has no input augmentation")
        return None
    return spec.augment(options, tuple(input_shape))
