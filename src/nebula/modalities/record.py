"""The modality record and its registration (``register_modality(Modality(...))``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nebula.registry import register


@dataclass(frozen=True)
class Modality:
    """One kind of data.

    name: the modality name (``data.modality``); encoder / decoder / reconstruction: registered names
    (``decoder="auto"`` mirrors the encoder); model_defaults:
    network options recorded in ``model.options`` unless set; config_defaults: config fields
    (``{"loss": {"anchor_weight": 0.1}}``) set where they still hold the generic default, so an
    explicit value equal to the generic default reads as unset; configure(model_cfg, meta): fills
    data-derived model options (e.g. a vocabulary size); augment(options, input_shape): the training-time
    input augmentation module for ``data.augment`` (or None); evaluators: evaluator names that apply;
    renderer: the renderer name for data-space grids (default: the modality's name); anchor_init: the
    placement of ``train.anchor_init = auto``; choose_encoder(input_shape): the encoder name of
    ``model.arch = auto`` for inputs of that shape (None: always ``encoder``).
    """

    name: str
    encoder: str
    decoder: str
    reconstruction: str
    model_defaults: dict[str, Any] = field(default_factory=dict)
    #: {section: {field: value}} set on the run's config where the field still holds the generic default
    config_defaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    configure: Callable[[Any, dict[str, Any]], None] | None = None
    augment: Callable[[dict[str, Any] | None, tuple[int, ...]], Any] | None = None
    evaluators: tuple[str, ...] = ()
    renderer: str | None = None
    anchor_init: str = "kmeans"
    choose_encoder: Callable[[tuple[int, ...]], str] | None = None

    def formats(self) -> list[str]:
        """The registered data formats that read this modality (each format names its modality)."""
        from nebula.data import FORMATS

        return [name for name, fmt in FORMATS.items() if fmt.modality == self.name]


def register_modality(modality: Modality) -> Modality:
    """Register ``modality`` under its name (a later record of the same name replaces it)."""
    return register("modality", modality.name, modality)
