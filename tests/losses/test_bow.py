"""Bag-of-words NLL against a hand-computed case; text_nll dispatch."""

from __future__ import annotations

import math

import torch

from nebula.losses import get_reconstruction
from nebula.losses.bow import bow_nll, top_words
from nebula.losses.token import token_counts


def test_bow_nll_hand_computed() -> None:
    # vocabulary: 0 pad, 1 unk, 2 bos, 3 eos, 4 "a", 5 "b"; text "<bos> a b a <eos> <pad>"
    target = torch.tensor([[2, 4, 5, 4, 3, 0]])
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0, math.log(4.0), math.log(2.0)]])  # p = (1,1,1,1,4,2) / 10
    expected = -(2 * math.log(0.4) + math.log(0.2) + math.log(0.1))  # a twice, b once, <eos> once
    assert torch.allclose(bow_nll(logits, target), torch.tensor([expected]))
    assert int(token_counts(target)) == 4  # the same scored tokens as the token cross-entropy


def test_bow_nll_ignores_order_and_padding() -> None:
    logits = torch.randn(1, 8)
    a = torch.tensor([[2, 4, 5, 6, 3, 0, 0]])
    b = torch.tensor([[2, 6, 4, 5, 3, 0, 0]])
    assert torch.allclose(bow_nll(logits, a), bow_nll(logits, b))


def test_text_nll_dispatches_on_the_output() -> None:
    rec = get_reconstruction("text_nll")
    target = torch.tensor([[2, 4, 5, 3]])
    seq = torch.randn(1, 4, 6)
    bag = torch.randn(1, 6)
    assert torch.allclose(rec.loss(seq, target), get_reconstruction("token_ce").loss(seq, target))
    assert torch.allclose(rec.loss(bag, target), bow_nll(bag, target))
    assert rec.to_data(seq).shape == (1, 4)
    words = top_words(torch.tensor([[9.0, 9.0, 9.0, 9.0, 1.0, 3.0, 2.0]]))
    assert words.tolist() == [[2, 5, 6, 4, 3]]  # <bos>, words by probability (specials skipped), <eos>
