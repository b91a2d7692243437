"""Bag-of-words encoder weights equal scikit-learn's sublinear tf-idf; decoder shapes; training step."""

from __future__ import annotations

import numpy as np
import torch

from nebula.config import ModelConfig
from nebula.data.text import configure_text, text_dataset
from nebula.nn import build_decoder, build_encoder
from nebula.nn.bow import tfidf_weights

TEXTS = ["apple apple banana", "banana cherry", "apple cherry cherry cherry", "date"]


def test_tfidf_weights_match_sklearn() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    ds = text_dataset(TEXTS, np.array([0, 1, 0, 1]), np.zeros(4, np.int8), "t")
    tokens = ds.meta["state"]["tokens"]
    idf = torch.tensor(np.log((1 + 4) / (1 + ds.meta["doc_freq"])) + 1, dtype=torch.float32)
    w = tfidf_weights(ds.x, idf)
    dense = torch.zeros(4, len(tokens)).scatter_add_(1, ds.x, w)
    vec = TfidfVectorizer(sublinear_tf=True, vocabulary=tokens[4:], token_pattern=r"\w+")
    ref = vec.fit_transform(TEXTS).toarray()
    assert np.allclose(dense[:, 4:].numpy(), ref, atol=1e-6)
    assert torch.all(dense[:, :4] == 0)


def test_bow_networks_build_and_train() -> None:
    ds = text_dataset(TEXTS * 4, np.array([0, 1, 0, 1] * 4), None, "t")
    cfg = ModelConfig(feature_dim=16)
    configure_text(cfg, ds.meta)
    enc = build_encoder("bow", ds.x.shape[1:], cfg)
    dec = build_decoder("bow", 3, ds.x.shape[1:], cfg, enc)
    assert np.allclose(enc.idf.numpy(), np.log((1 + ds.meta["num_train_docs"]) / (1 + ds.meta["doc_freq"])) + 1)
    h = enc(ds.x)
    logits = dec(torch.zeros(len(ds.x), 3))
    assert h.shape == (16, 16) and logits.shape == (16, ds.meta["vocab_size"])
    probs = torch.softmax(logits[0], 0)  # the bias starts at the smoothed document frequencies
    assert probs[ds.meta["state"]["tokens"].index("apple")] > probs[ds.meta["state"]["tokens"].index("date")]
