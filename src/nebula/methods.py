"""The method registry: every training method, registered in one place outside any method.

A method is a package (``nebula.nvc``, ``nebula.contrastive``, ...) that registers a
:class:`MethodSpec` under each name ``Config.method`` may take. The spec says which config sections
the method reads (the others are left out of its config.yaml), which family of evaluators applies,
how to name a run (NVC: its variant ae / vae / tae / tvae / nvc-ml), and how to build the model from
the configuration and the data's shapes (:class:`DataShapes`), never from a dataset.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nebula.registry import Registry


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


METHODS: Registry[MethodSpec] = Registry("method", ("nebula.nvc.method", "nebula.contrastive.method"))


def register_method(spec: MethodSpec) -> MethodSpec:
    """Register ``spec`` under ``spec.name``."""
    return METHODS.register(spec.name, spec)


def method_sections() -> set[str]:
    """Every config section some method owns (the sections a config.yaml leaves out when its method does not read them)."""
    return {s for spec in METHODS.values() for s in spec.sections}
