"""Tiny generated parallel corpora for the translation tests."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

WORDS = ["anna", "bert", "carl", "dora", "emil", "fay"]


def copy_corpus(root: Path, train: int = 300, test: int = 20, seed: int = 0, gz: bool = False) -> Path:
    """A folder with train/test splits of a copy task: the target is the upper-cased source ({split}.src / .tgt)."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", train), ("test", test)):
        src = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 5))) for _ in range(n)]
        for lang, lines in (("src", src), ("tgt", [s.upper() for s in src])):
            data = ("\n".join(lines) + "\n").encode()
            name = root / f"{split}.{lang}{'.gz' if gz else ''}"
            name.write_bytes(gzip.compress(data) if gz else data)
    return root


def tiny_config(data: Path, out: Path | None = None, epochs: int = 25, **sets) -> object:
    """A translation Config sized to train in seconds on the copy task."""
    from nebula.config import Config

    cfg = Config()
    cfg.method = "translation"
    cfg.data.source = str(data)
    cfg.data.options = {"source": "src", "target": "tgt"}
    cfg.model.variational = cfg.model.use_anchors = False
    cfg.loss.metric_order = 0
    t = cfg.translation
    t.d_model, t.ff_dim, t.heads, t.encoder_layers, t.decoder_layers, t.dropout, t.warmup_steps = 64, 128, 2, 1, 1, 0.0, 10
    t.label_smoothing, t.eval_beam = 0.0, 2
    cfg.train.epochs, cfg.train.batch_size, cfg.train.lr = epochs, 32, 3e-3
    cfg.train.quiet, cfg.train.figures = True, False
    cfg.output = str(out) if out is not None else None
    cfg.override([f"{k.replace('__', '.')}={v}" for k, v in sets.items()])
    return cfg
