"""Modalities: one record per kind of data, registered in :data:`MODALITIES`.

A :class:`Modality` names everything that is particular to a kind of data: the data formats that read
it (:data:`nebula.data.FORMATS`), the default encoder and decoder (:mod:`nebula.nn`) with the network
defaults recorded in ``model.options``, the reconstruction loss (:mod:`nebula.losses`), the training
augmentation, the evaluators (:mod:`nebula.evaluate.registry`), the renderer of data-space samples
(:mod:`nebula.evaluate.plots`) and the default anchor placement. The built-in records are the modules of
this package; a new modality is a new record (and its parts), registered with :func:`register_modality`
from anywhere, with no change to nebula's files. ``model.arch = auto`` takes the modality's encoder; the
reference's -c / -f flags ask for the ``conv`` / ``fire`` families, which are dimension-generic.
"""

from __future__ import annotations

from typing import Any

from nebula.errors import ConfigError
from nebula.modalities.record import Modality, register_modality
from nebula.registry import Registry

__all__ = ["MODALITIES", "Modality", "apply_config_defaults", "build_augment", "configure_model", "modality", "register_modality",
           "resolve_anchor_init", "resolve_architecture"]


def _builtins() -> None:
    from nebula.modalities import image, points, tabular, text, translation, voxels  # noqa: F401


MODALITIES: Registry[Modality] = Registry("modality", _builtins)


def modality(name: str) -> Modality:
    """The record of ``name``; :class:`ConfigError` with the closest known one otherwise."""
    return MODALITIES.lookup(name)


def resolve_architecture(modality_name: str, arch: str, decoder: str, reconstruction: str,
                         input_shape: tuple[int, ...] | None = None) -> tuple[str, str, str]:
    """(encoder, decoder, reconstruction) names with every ``auto`` resolved for ``modality_name``.

    With ``input_shape`` (one sample's), ``arch = auto`` asks the modality's ``choose_encoder`` if it has one.
    """
    spec = modality(modality_name)
    if arch != "auto":
        enc = arch
    elif spec.choose_encoder is not None and input_shape is not None:
        enc = spec.choose_encoder(tuple(input_shape))
    else:
        enc = spec.encoder
    if decoder == "auto":
        dec = spec.decoder if spec.decoder != "auto" and arch == "auto" else enc
    else:
        dec = decoder
    rec = spec.reconstruction if reconstruction == "auto" else reconstruction
    return enc, dec, rec


def resolve_anchor_init(modality_name: str, anchor_init: str) -> str:
    """``train.anchor_init`` with ``auto`` resolved to the modality's default."""
    if anchor_init != "auto":
        return anchor_init
    spec = MODALITIES.get(modality_name)
    return spec.anchor_init if spec is not None else "kmeans"


def apply_config_defaults(cfg: Any, modality_name: str) -> None:
    """Set the modality's ``config_defaults`` on ``cfg`` (a Config) where a field holds the generic default."""
    spec = MODALITIES.get(modality_name)
    for section, values in (spec.config_defaults if spec is not None else {}).items():
        part = getattr(cfg, section)
        generic = type(part)()
        for key, value in values.items():
            if getattr(part, key) == getattr(generic, key):
                setattr(part, key, value)


def configure_model(model_cfg: Any, modality_name: str, meta: dict[str, Any]) -> None:
    """Record the modality's network defaults and data-derived options in ``model.options`` (saved with the run)."""
    spec = MODALITIES.get(modality_name)
    if spec is None:
        return
    for key, value in spec.model_defaults.items():
        model_cfg.options.setdefault(key, list(value) if isinstance(value, tuple) else value)
    if spec.configure is not None:
        spec.configure(model_cfg, meta)


def build_augment(modality_name: str, options: dict[str, Any] | None, input_shape: tuple[int, ...]) -> Any:
    """The modality's training-time augmentation module for ``data.augment`` (None when it has none)."""
    spec = MODALITIES.get(modality_name)
    if spec is None or spec.augment is None:
        if options:
            raise ConfigError(f"data.augment: modality '{modality_name}' has no input augmentation")
        return None
    return spec.augment(options, tuple(input_shape))
