"""Text (N, T) token ids: bag-of-words encoder and decoder (``bow``, NVDM-style) with the text
likelihood ``text_nll`` (bag NLL for vocabulary logits, token cross-entropy for a sequence decoder:
``model.arch: gru`` gives the sentence VAE of the recipes); vocabulary facts, idf and LSA word vectors
from the data (:func:`nebula.data.text.configure_text`); perplexity, samples and interpolations as
evaluation. The text defaults themselves live in nebula.data.text (TEXT_MODEL_DEFAULTS) and
nebula.nn.bow (BOW_DEFAULTS)."""

from __future__ import annotations

from typing import Any

from nebula.modalities.record import Modality, register_modality


def configure_text(model_cfg: Any, meta: dict[str, Any]) -> None:
    from nebula.data.text import configure_text as configure

    configure(model_cfg, meta)


TEXT = register_modality(Modality(
    "text", encoder="bow", decoder="bow", reconstruction="text_nll", configure=configure_text, evaluators=("text",),
    renderer="text"))
