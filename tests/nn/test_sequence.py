"""Sequence encoders/decoders: shapes, teacher forcing, word dropout, greedy decoding, token loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nebula.config import ModelConfig
from nebula.data.tokenize import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from nebula.errors import ConfigError
from nebula.losses import get_reconstruction
from nebula.losses.token import token_counts, token_cross_entropy
from nebula.nn import build_decoder, build_encoder

V, L, N = 30, 9, 5
LENGTHS = [1, 3, 7, 5, 2]


def model_cfg(**options) -> ModelConfig:
    cfg = ModelConfig(feature_dim=16)
    cfg.options.update({"vocab_size": V, "max_length": L, "embedding_dim": 8, "rnn_hidden": 12, "decoder_hidden": 12,
                        "transformer_heads": 2, "transformer_layers": 1, **options})
    return cfg


def batch(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(N, L, dtype=torch.long)
    for i, n in enumerate(LENGTHS):
        x[i, 0] = BOS_ID
        x[i, 1 : n + 1] = torch.randint(4, V, (n,), generator=g)
        x[i, n + 1] = EOS_ID
    return x


@pytest.mark.parametrize("name", ["gru", "lstm", "transformer"])
def test_encoders_shape_padding_invariance_and_gradient(name: str) -> None:
    torch.manual_seed(0)
    enc = build_encoder(name, (L,), model_cfg()).eval()
    x = batch()
    h = enc(x)
    assert h.shape == (N, 16) and enc.out_features == 16 and torch.isfinite(h).all()
    # extra padding does not change the encoding (lengths are respected / padding masked)
    longer = torch.cat([x, torch.zeros(N, 4, dtype=torch.long)], 1)
    if name == "transformer":
        enc = build_encoder(name, (L + 4,), model_cfg()).eval()
        enc.load_state_dict({k: (v if not k.startswith("position") else torch.cat([v, torch.zeros(4, v.shape[1])]))
                             for k, v in build_encoder(name, (L,), model_cfg()).state_dict().items()}, strict=False)
        torch.testing.assert_close(enc(longer), enc(torch.cat([x, torch.zeros(N, 4, dtype=torch.long)], 1)))
    else:
        torch.testing.assert_close(enc(longer), h, atol=1e-6, rtol=1e-5)
    # ids after <eos> (a bag's word-pair ids) do not change the encoding either
    tail = x.clone()
    for i, n in enumerate(LENGTHS):
        tail[i, n + 2 :] = 5
    torch.testing.assert_close(enc(tail), enc(x), atol=1e-6, rtol=1e-5)
    enc.train()
    enc(x).sum().backward()
    assert enc.embedding.weight.grad is not None and enc.embedding.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ["gru", "lstm", "transformer"])
def test_decoder_teacher_forcing_is_causal_and_aligned(name: str) -> None:
    torch.manual_seed(0)
    cfg = model_cfg(word_dropout=0.0)
    dec = build_decoder(name, 6, (L,), cfg, build_encoder("gru", (L,), cfg)).eval()
    z, x = torch.randn(N, 6), batch()
    out = dec(z, x)
    assert out.shape == (N, L, V)
    # position t depends only on tokens < t: changing token 4 leaves positions 0..4 unchanged
    x2 = x.clone()
    x2[:, 4] = 5
    out2 = dec(z, x2)
    torch.testing.assert_close(out[:, :5], out2[:, :5])
    assert not torch.allclose(out[:, 5:], out2[:, 5:])
    # and the decoder uses z
    assert not torch.allclose(dec(torch.randn(N, 6), x)[:, 1], out[:, 1])


@pytest.mark.parametrize("name", ["gru", "transformer"])
def test_greedy_generation_layout_and_consistency(name: str) -> None:
    torch.manual_seed(1)
    cfg = model_cfg()
    dec = build_decoder(name, 6, (L,), cfg, build_encoder("gru", (L,), cfg)).eval()
    z = torch.randn(7, 6)
    logits = dec(z)
    assert logits.shape == (7, L, V)
    ids = logits.argmax(-1)
    assert (ids[:, 0] == BOS_ID).all()
    for row in ids:
        ends = (row == EOS_ID).nonzero().flatten()
        assert len(ends) >= 1  # every sample ends (forced <eos> at the last position at the latest)
        assert (row[ends[0] + 1 :] == PAD_ID).all()
    # greedy output equals teacher forcing on its own tokens (same logits at the predicted positions)
    forced = dec(z, ids)
    first_end = [int((r == EOS_ID).nonzero()[0]) for r in ids]
    for i, e in enumerate(first_end):
        if e < L - 1:
            torch.testing.assert_close(forced[i, 1 : e + 1].argmax(-1), ids[i, 1 : e + 1])


def test_word_dropout_only_in_training_and_spares_specials() -> None:
    cfg = model_cfg(word_dropout=1.0)
    dec = build_decoder("gru", 6, (L,), cfg, build_encoder("gru", (L,), cfg))
    x = batch()
    dec.train()
    inputs = dec.shifted_inputs(x)
    words = torch.cat([torch.zeros(N, 1, dtype=torch.long), x[:, :-1]], 1)
    assert (inputs[words > 3] == UNK_ID).all() and (inputs[words <= 3] == words[words <= 3]).all()
    dec.eval()
    assert torch.equal(dec.shifted_inputs(x), words)


def test_tied_embedding_and_output() -> None:
    cfg = model_cfg(tie_embedding=True, tie_output=True)
    enc = build_encoder("gru", (L,), cfg)
    dec = build_decoder("gru", 6, (L,), cfg, enc)
    assert dec.embedding is enc.embedding
    untied = build_decoder("gru", 6, (L,), model_cfg(tie_output=False), enc)
    assert untied.out.out_features == V


def test_token_cross_entropy_matches_manual_sum() -> None:
    torch.manual_seed(0)
    logits, x = torch.randn(N, L, V), batch()
    loss = token_cross_entropy(logits, x)
    manual = torch.stack([
        sum(-F.log_softmax(logits[i, t], -1)[x[i, t]] for t in range(1, L) if x[i, t] != PAD_ID) for i in range(N)])
    torch.testing.assert_close(loss, manual)
    assert token_counts(x).tolist() == [2, 4, 8, 6, 3]
    tail = torch.where(x == PAD_ID, torch.full_like(x, 5), x)  # ids after <eos> are not scored
    torch.testing.assert_close(token_cross_entropy(logits, tail), loss)
    rec = get_reconstruction("token_ce")
    assert torch.equal(rec.to_data(logits), logits.argmax(-1))


def test_missing_vocabulary_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="vocab_size"):
        build_encoder("gru", (L,), ModelConfig())
    with pytest.raises(ConfigError, match="divisible"):
        build_encoder("transformer", (L,), model_cfg(embedding_dim=9))
