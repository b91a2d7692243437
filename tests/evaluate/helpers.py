"""A run folder written by hand with known latents, for evaluation tests that need no training."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np

from nebula.config import Config


def fake_run(path: Path, with_anchors: bool = True, seed: int = 0) -> dict[str, np.ndarray]:
    """3 well-separated classes of 30 latents in 4-d around 3 anchors; nearest-anchor ids are a
    permutation of the labels; split: every 4th sample is test."""
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True, exist_ok=True)
    y = np.repeat(np.arange(3), 30)
    anchors = np.array([[0, 0, 0, 0], [8, 0, 0, 0], [0, 8, 0, 0]], dtype=np.float32)
    z = (anchors[y] + rng.normal(scale=0.5, size=(90, 4))).astype(np.float32)
    perm = np.array([2, 0, 1])
    emb = {
        "z": z,
        "assign": perm[y] if with_anchors else np.full(90, -1),
        "anchors": anchors[np.argsort(perm)] if with_anchors else np.zeros((0, 4), np.float32),
        "y": y.astype(np.int64),
        "split": (np.arange(90) % 4 == 3).astype(np.int8),
        "rec": np.arange(90, dtype=np.float32),
    }
    np.savez(path / "embeddings.npz", **emb)
    cfg = Config()
    cfg.apply_variant("tvae" if with_anchors else "vae")
    cfg.model.latent_dim = 4
    cfg.train.seed = seed
    cfg.to_yaml(path / "config.yaml")
    info = {"status": "complete", "variant": cfg.variant, "modality": "image",
            "dataset": {"name": "fake", "split_kind": "every 4th"}, "num_samples": 90,
            "input_shape": [1, 2, 2], "target_shape": [1, 2, 2], "num_classes": 3,
            "architecture": {"reconstruction": "bce"}, "train_seconds": 1.5}
    (path / "run.json").write_text(json.dumps(info))
    rows = ["epoch,rec,kl,loss,lr,reseeded,seconds,near"]
    rows += [f"{e},{10 - e},{e * 0.1},{11 - e},0.001,0,0.1,{'' if e < 3 else 1.0 / e}" for e in range(1, 7)]
    (path / "metrics.csv").write_text("\n".join(rows) + "\n")
    return emb


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.images: list[str] = []
        self.links: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "img":
            self.images.append(a.get("src") or "")
        for key in ("href", "src"):
            if tag != "img" and a.get(key):
                self.links.append(a[key])
        if tag not in ("img", "meta", "br", "link", "input", "hr"):
            self.open.append(tag)

    def handle_endtag(self, tag):
        assert self.open and self.open[-1] == tag, f"unbalanced </{tag}> after {self.open[-3:]}"
        self.open.pop()


def check_self_contained_html(path: Path) -> list[str]:
    """Parse ``path`` strictly (balanced tags), check every <img> is an embedded PNG and nothing
    references an external resource; returns the image sources."""
    import base64

    text = Path(path).read_text()
    assert text.startswith("<!DOCTYPE html>")
    p = _Collector()
    p.feed(text)
    p.close()
    assert not p.open, f"unclosed tags {p.open}"
    assert "html" in p.tags and "body" in p.tags and "title" in p.tags
    assert not p.links, f"external references {p.links}"
    assert "http://" not in text and "https://" not in text and "<script" not in text
    for src in p.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    return p.images
