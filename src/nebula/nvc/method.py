"""Registers NVC (``Config.method = nvc``): its model, config sections and run label (the variant)."""

from __future__ import annotations

from nebula.config import Config
from nebula.errors import ConfigError
from nebula.methods.spec import DataShapes, MethodSpec, register_method
from nebula.modalities import apply_config_defaults, configure_model
from nebula.nvc.model import NebulaCoder


def build_nvc(cfg: Config, shapes: DataShapes) -> NebulaCoder:
    """The NVC model of ``cfg`` for data of ``shapes`` (the modality fills data-derived model options first)."""
    apply_config_defaults(cfg, shapes.modality)
    configure_model(cfg.model, shapes.modality, shapes.meta)
    model = NebulaCoder.from_config(cfg, shapes.input_shape, shapes.target_shape, shapes.modality)
    if model.anchors is not None and model.anchor_init == "tsne" and not shapes.real_valued:
        # refused before training rather than when the anchors are placed
        name = shapes.meta.get("name", "the data")
        raise ConfigError(f"train.anchor_init=tsne needs real-valued inputs, {name} has {shapes.dtype} "
                          "(e.g. token ids): use kmeans")
    return model


register_method(MethodSpec("nvc", family="nvc", build=build_nvc, sections=("model", "loss"),
                           label=lambda cfg: cfg.variant))
