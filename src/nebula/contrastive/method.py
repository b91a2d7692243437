"""Registers the contrastive methods (simclr, manifoldclr, directclr, mixup, noise): one
:class:`~nebula.contrastive.learner.ContrastiveLearner` each, reading the ``contrastive`` config section."""

from __future__ import annotations

from collections.abc import Callable

from nebula.config import Config
from nebula.contrastive.learner import METHODS, ContrastiveLearner
from nebula.errors import ConfigError
from nebula.methods.spec import DataShapes, MethodSpec, register_method


def _builder(method: str) -> Callable[[Config, DataShapes], ContrastiveLearner]:
    def build(cfg: Config, shapes: DataShapes) -> ContrastiveLearner:
        if shapes.modality != "image":
            raise ConfigError(f"method '{method}' needs image data, found modality '{shapes.modality}'")
        return ContrastiveLearner(cfg, shapes.input_shape, method)

    return build


for _name in METHODS:
    register_method(MethodSpec(_name, family="contrastive", build=_builder(_name), sections=("contrastive",)))
