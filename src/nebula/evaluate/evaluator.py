"""The evaluator record and its registration: ``@register_evaluator(name, modalities, families)``.

An evaluator is ``fn(run, dataset) -> {metric: value}``; its results are merged into ``eval.json``
under its name. :mod:`nebula.evaluate.registry` holds the registry and chooses the evaluators of a run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nebula.registry import register

Evaluator = Callable[[Any, Any], dict[str, Any]]


@dataclass(frozen=True)
class EvaluatorEntry:
    """``fn`` runs for runs whose method family is in ``families`` (None: any) and whose modality is in
    ``modalities`` (None: the modalities whose record names this evaluator, :mod:`nebula.modalities`)."""

    name: str
    fn: Evaluator
    modalities: tuple[str, ...] | None = None
    families: tuple[str, ...] | None = None


def register_evaluator(name: str, modalities: tuple[str, ...] | None = None,
                       families: tuple[str, ...] | None = None) -> Callable[[Evaluator], Evaluator]:
    """Register ``fn(run, dataset) -> dict`` for runs of the given method families (None: all) and modalities
    (None: those whose record names ``name``)."""

    def wrap(fn: Evaluator) -> Evaluator:
        register("evaluator", name, EvaluatorEntry(name, fn, modalities, families))
        return fn

    return wrap
