"""Text (N, T) token ids: bag-of-words encoder and decoder (``bow``, NVDM-style) with the text
likelihood ``text_nll`` (bag NLL for vocabulary logits, token cross-entropy for a sequence decoder:
``model.arch: gru`` gives the sentence VAE of the recipes); vocabulary facts, idf and LSA word vectors
from the data (:func:`nebula.data.text.configure_text`); perplexity, samples and interpolations as
evaluation. Text defaults: TEXT_CONFIG_DEFAULTS below (config fields) and
nebula.nn.bow (BOW_DEFAULTS)."""

from __future__ import annotations

from typing import Any

from nebula.modalities.record import Modality, register_modality


def configure_text(model_cfg: Any, meta: dict[str, Any]) -> None:
    from nebula.data.text import configure_text as configure

    configure(model_cfg, meta)


#: text defaults of the run config (fields still at the generic default), measured with the bow coder:
#: * model.latent_dim 64 -- StackOverflow, bow VAE without anchors, 10 epochs: linear probe / k-means ACC
#:   0.569 / 0.370 at d = 10, 0.768 / 0.600 at d = 32, 0.814 / 0.707 at d = 64;
#: * loss.anchor_weight 0.1 (= the default beta) -- StackOverflow tvae, 20 anchors, 30 epochs: at weight
#:   1 the pull collapses the latent when the anchors start (KL 47 -> 18 nats, rec 48 -> 63), anchor
#:   ACC 0.270, probe 0.814; at 0.1 anchor ACC 0.720, probe 0.830;
#: (loss.metric_weight 0.1 is the generic default: TREC nvc-ml, 6 anchors, 30 epochs: probe 0.564 at 1,
#: 0.712 at 0.1; nebula.config.LossConfig).
TEXT_CONFIG_DEFAULTS = {"model": {"latent_dim": 64}, "loss": {"anchor_weight": 0.1}}

TEXT = register_modality(Modality(
    "text", encoder="bow", decoder="bow", reconstruction="text_nll", configure=configure_text, evaluators=("text",), config_defaults=TEXT_CONFIG_DEFAULTS,
    renderer="text"))
