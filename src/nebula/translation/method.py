"""Registers ``method = translation``: the model of the ``translation`` section (plus the latent options of
``model`` and ``loss``), evaluator family ``translation``, runs labelled plain / vae / tvae / nvc-ml."""

from __future__ import annotations

from typing import Any

from nebula.config import Config
from nebula.errors import ConfigError
from nebula.methods.spec import DataShapes, MethodSpec, register_method
from nebula.translation.model import TranslationModel


def vocabulary(meta: dict[str, Any]) -> tuple[int, int, bool]:
    """(source vocabulary, target vocabulary, shared) from a dataset's meta or its saved data state."""
    if "src_vocab_size" in meta:
        return int(meta["src_vocab_size"]), int(meta["tgt_vocab_size"]), bool(meta.get("shared_vocab", False))
    if meta.get("state"):
        from nebula.data.parallel import tokenizers_from_state

        src, tgt = tokenizers_from_state(meta["state"])
        return src.vocab_size, tgt.vocab_size, src is tgt
    raise ConfigError("method 'translation' needs the vocabulary sizes of translation data")


def validate(cfg: Config) -> None:
    tc = cfg.translation
    checks = [
        (tc.condition in ("memory", "input", "both"), f"translation.condition must be memory, input or both, found {tc.condition!r}"),
        (tc.d_model >= 2 and tc.heads >= 1 and tc.d_model % tc.heads == 0,
         f"translation.d_model ({tc.d_model}) must be a positive even multiple of translation.heads ({tc.heads})"),
        (tc.d_model % 2 == 0, f"translation.d_model must be even, found {tc.d_model}"),
        (tc.encoder_layers >= 1 and tc.decoder_layers >= 1, "translation.encoder_layers and decoder_layers must be >= 1"),
        (0.0 <= tc.label_smoothing < 1.0, f"translation.label_smoothing must be in [0, 1), found {tc.label_smoothing}"),
        (0.0 <= tc.dropout < 1.0, f"translation.dropout must be in [0, 1), found {tc.dropout}"),
        (tc.beam >= 1 and tc.eval_beam >= 1, "translation.beam and translation.eval_beam must be >= 1"),
        (tc.warmup_steps >= 0, f"translation.warmup_steps must be >= 0, found {tc.warmup_steps}"),
        (cfg.train.anchor_init in ("auto", "kmeans", "random"), "translation runs place anchors by kmeans or random "
         f"(train.anchor_init), found {cfg.train.anchor_init!r}"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


def build_translation(cfg: Config, shapes: DataShapes) -> TranslationModel:
    """The model of ``cfg`` for translation data of ``shapes``; anchors are placed after
    min(train.pretrain_epochs, train.epochs // 2) epochs, so every run with anchors uses them."""
    if shapes.modality != "translation":
        raise ConfigError(f"method 'translation' needs translation data (a folder of SPLIT.LANG files or a pair "
                          f"NAME.SRC / NAME.TGT), found modality '{shapes.modality}'")
    validate(cfg)
    src, tgt, shared = vocabulary(shapes.meta)
    init = "kmeans" if cfg.train.anchor_init == "auto" else cfg.train.anchor_init
    pretrain = min(cfg.train.pretrain_epochs, cfg.train.epochs // 2)
    return TranslationModel(cfg.translation, cfg.model, cfg.loss, src, tgt, shared, pretrain, init)


def label(cfg: Config) -> str:
    """plain (no latent) or the NVC variant name of the latent (vae, tvae, nvc-ml, ae, tae, custom)."""
    return "plain" if not (cfg.model.variational or cfg.model.use_anchors) else cfg.variant


register_method(MethodSpec("translation", family="translation", build=build_translation,
                           sections=("translation", "model", "loss"), label=label))
