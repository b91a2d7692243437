"""The ``translation`` config section (plain data; imports nothing of nebula, so :mod:`nebula.config` can hold it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TranslationConfig:
    """Transformer encoder-decoder and decoding options of ``method = translation`` (docs/translation.md).

    Network: ``encoder_layers`` + ``decoder_layers`` pre-norm Transformer layers of width ``d_model``,
    ``heads`` attention heads, feed-forward width ``ff_dim``, ``dropout``; ``tie_embeddings`` shares the
    target embedding with the output projection (and, with a joint vocabulary, with the source).
    Sentence latent (variants vae / tvae / nvc-ml: ``model.variational``, ``model.use_anchors``,
    ``loss.metric_order``; ``model.latent_dim``, ``model.num_anchors``): ``condition`` says how z
    reaches the decoder: ``memory`` (one extra memory token), ``input`` (added to every decoder input
    embedding) or ``both``. Training: ``label_smoothing``; linear learning-rate warm-up over
    ``warmup_steps`` optimiser steps (at most a tenth of the run's steps), on top of ``train.lr_schedule``.
    Decoding: ``beam`` (1 = greedy), GNMT ``length_penalty`` alpha, at most ``max_len_a`` * source length
    + ``max_len_b`` tokens. Evaluation: ``eval_beam`` and ``eval_sentences`` (0: the whole test split).
    """

    encoder_layers: int = 3
    decoder_layers: int = 3
    d_model: int = 256
    heads: int = 4
    ff_dim: int = 1024
    dropout: float = 0.1
    tie_embeddings: bool = True
    condition: str = "both"
    label_smoothing: float = 0.1
    warmup_steps: int = 4000
    beam: int = 4
    length_penalty: float = 0.6
    max_len_a: float = 1.5
    max_len_b: int = 10
    eval_beam: int = 4
    eval_sentences: int = 0
