"""Registries that let each modality or method plug into evaluation without touching it.

* ``EVALUATORS``: name -> (modalities or None for all, fn(run, dataset) -> {metric: value}); extra
  metrics (e.g. Chamfer/F-score/IoU for 3D, perplexity for text) merged into ``eval.json``.
* Renderers for data-space samples live in :mod:`nebula.evaluate.plots` (``register_renderer``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Evaluator = Callable[[Any, Any], dict[str, Any]]
EVALUATORS: dict[str, tuple[tuple[str, ...] | None, Evaluator]] = {}


def register_evaluator(name: str, modalities: tuple[str, ...] | None = None) -> Callable[[Evaluator], Evaluator]:
    """Register ``fn(run, dataset) -> dict`` for runs of the given modalities (None: every run)."""

    def wrap(fn: Evaluator) -> Evaluator:
        EVALUATORS[name] = (modalities, fn)
        return fn

    return wrap


def evaluators_for(modality: str) -> dict[str, Evaluator]:
    _register_builtin()
    return {n: fn for n, (mods, fn) in EVALUATORS.items() if mods is None or modality in mods}


def _register_builtin() -> None:
    import importlib

    for module in ("text", "contrastive", "geometry"):  # e.g. "geometry", "text"
        importlib.import_module(f"nebula.evaluate.{module}")
