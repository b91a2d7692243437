"""The method record (:class:`MethodSpec`), what a builder knows of the data (:class:`DataShapes`), and
the registration ``register_method(MethodSpec(...))``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nebula.registry import register


@dataclass(frozen=True)
class DataShapes:
    """What a model builder may know of the data.

    input_shape / target_shape: one sample's shapes; modality: registered modality name; dtype: the
    inputs' dtype (token ids are ``torch.int64``); meta: loader facts a builder may use (e.g. a text
    vocabulary's size).
    """

    input_shape: tuple[int, ...]
    target_shape: tuple[int, ...]
    modality: str = "image"
    dtype: str = "torch.float32"
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def real_valued(self) -> bool:
        return "float" in self.dtype

    @classmethod
    def of(cls, dataset: Any) -> DataShapes:
        return cls(tuple(dataset.input_shape), tuple(dataset.target_shape), dataset.modality,
                   str(dataset.x.dtype), dict(dataset.meta))


@dataclass(frozen=True)
class MethodSpec:
    """A registered method.

    name: the ``Config.method`` value; family: the evaluator family (``nvc``, ``contrastive``, ...);
    build(cfg, shapes) -> the model (an ``nn.Module`` of the contract in :mod:`nebula.train.contract`);
    sections: the method's own config sections (besides data and train); label(cfg) -> the run's name
    in run.json, eval.json and reports (default: the method name).
    """

    name: str
    family: str
    build: Callable[[Any, DataShapes], Any]
    sections: tuple[str, ...] = ()
    label: Callable[[Any], str] | None = None

    def run_label(self, cfg: Any) -> str:
        return self.label(cfg) if self.label is not None else self.name


def register_method(spec: MethodSpec) -> MethodSpec:
    """Register ``spec`` under ``spec.name``."""
    return register("method", spec.name, spec)
