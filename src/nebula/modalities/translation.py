"""Translation (N, Ls) source ids with (N, Lt) target ids: read by :mod:`nebula.data.parallel`, modelled by
the ``translation`` method (:mod:`nebula.translation`), scored by the ``translation`` evaluator (BLEU, chrF)."""

from __future__ import annotations

from nebula.modalities.record import Modality, register_modality

TRANSLATION = register_modality(Modality(
    "translation", encoder="transformer", decoder="transformer", reconstruction="token_ce", evaluators=("translation",),
    anchor_init="kmeans"))
