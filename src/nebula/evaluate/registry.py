"""The evaluators of a run, chosen by (method family, modality), so each method and modality plugs
into evaluation without touching it (records and registration: :mod:`nebula.evaluate.evaluator`).

Built-in evaluators: Chamfer / F-score / IoU for 3D (``geometry``), perplexity and samples for text
(``text``), operator diagnostics and few-label probes for contrastive runs (``contrastive``).
Renderers for data-space samples live in :mod:`nebula.evaluate.plots`.
"""

from __future__ import annotations

from nebula.evaluate.evaluator import Evaluator, EvaluatorEntry, register_evaluator
from nebula.registry import Registry

__all__ = ["EVALUATORS", "Evaluator", "EvaluatorEntry", "evaluators_for", "register_evaluator"]


def _builtins() -> None:
    from nebula.evaluate import contrastive, geometry, text, translation  # noqa: F401


EVALUATORS: Registry[EvaluatorEntry] = Registry("evaluator", _builtins)


def applies(entry: EvaluatorEntry, modality: str, family: str) -> bool:
    """Whether ``entry`` evaluates runs of ``modality`` trained by a method of ``family``."""
    if entry.families is not None and family not in entry.families:
        return False
    if entry.modalities is not None:
        return modality in entry.modalities
    from nebula.modalities import MODALITIES

    record = MODALITIES.get(modality)
    return record is not None and entry.name in record.evaluators


def evaluators_for(modality: str, family: str = "nvc") -> dict[str, Evaluator]:
    """name -> evaluator for a run of ``modality`` trained by a method of ``family``."""
    return {e.name: e.fn for e in EVALUATORS.values() if applies(e, modality, family)}
