"""Text (N, T) token ids: GRU encoder and decoder, token cross-entropy; vocabulary facts from the data;
perplexity, samples and interpolations as evaluation."""

from __future__ import annotations

from typing import Any

from nebula.modalities.record import Modality, register_modality


def configure_text(model_cfg: Any, meta: dict[str, Any]) -> None:
    from nebula.data.text import configure_text as configure

    configure(model_cfg, meta)


TEXT = register_modality(Modality(
    "text", encoder="gru", decoder="gru", reconstruction="token_ce", configure=configure_text, evaluators=("text",),
    renderer="text"))
