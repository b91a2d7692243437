"""Evaluator plug-ins, chosen by (method family, modality), so each method and modality plugs into
evaluation without touching it.

An evaluator is ``fn(run, dataset) -> {metric: value}``; its results are merged into ``eval.json``
under its name (e.g. Chamfer/F-score/IoU for 3D, perplexity for text, operator diagnostics for
contrastive runs). Renderers for data-space samples live in :mod:`nebula.evaluate.plots`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nebula.registry import Registry

Evaluator = Callable[[Any, Any], dict[str, Any]]


@dataclass(frozen=True)
class EvaluatorEntry:
    """``fn`` runs for runs whose modality is in ``modalities`` and whose method family is in ``families``
    (None: any)."""

    name: str
    fn: Evaluator
    modalities: tuple[str, ...] | None = None
    families: tuple[str, ...] | None = None

    def applies(self, modality: str, family: str) -> bool:
        return ((self.modalities is None or modality in self.modalities)
                and (self.families is None or family in self.families))


EVALUATORS: Registry[EvaluatorEntry] = Registry(
    "evaluator", tuple(f"nebula.evaluate.{m}" for m in ("text", "contrastive", "geometry")))


def register_evaluator(name: str, modalities: tuple[str, ...] | None = None,
                       families: tuple[str, ...] | None = None) -> Callable[[Evaluator], Evaluator]:
    """Register ``fn(run, dataset) -> dict`` for runs of the given modalities and method families (None: all)."""

    def wrap(fn: Evaluator) -> Evaluator:
        EVALUATORS.register(name, EvaluatorEntry(name, fn, modalities, families))
        return fn

    return wrap


def evaluators_for(modality: str, family: str = "nvc") -> dict[str, Evaluator]:
    """name -> evaluator for a run of ``modality`` trained by a method of ``family``."""
    return {e.name: e.fn for e in EVALUATORS.values() if e.applies(modality, family)}
