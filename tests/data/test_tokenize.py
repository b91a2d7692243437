"""Word and subword tokenizers: round trips, vocabulary limits, specials, truncation, saved state."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from nebula.data.tokenize import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    SPECIALS,
    UNK_ID,
    SubwordTokenizer,
    WordVocabulary,
    fit_tokenizer,
    tokenizer_facts,
    tokenizer_from_state,
)
from nebula.errors import DataError

TEXTS = ["How did serfdom develop in Russia ?", "What films featured the character Popeye Doyle ?",
         "Who wrote Hamlet ?", "What is the capital of France ?", "Don't panic, it's only a test."]


def test_word_round_trip_and_layout() -> None:
    vocab = WordVocabulary.fit(TEXTS, max_length=16)
    ids, lengths = vocab.encode(TEXTS)
    assert ids.shape == (5, 16) and ids.dtype == torch.int64
    assert (ids[:, 0] == BOS_ID).all()
    for row, n in zip(ids, lengths):
        assert row[n + 1] == EOS_ID and (row[n + 2 :] == PAD_ID).all() and (row[1 : n + 1] > 3).all()
    # decode(encode(t)) is the lower-cased token sequence joined by spaces
    assert vocab.decode(ids) == [" ".join(vocab.tokens(t)) for t in TEXTS]
    assert vocab.tokens("Don't panic, it's") == ["don't", "panic", ",", "it's"]
    assert list(vocab.itos[:4]) == list(SPECIALS)


def test_word_frequency_order_min_freq_and_max_size() -> None:
    texts = ["a a a b b c", "a b d"]
    vocab = WordVocabulary.fit(texts)
    assert vocab.itos[4:] == ["a", "b", "c", "d"]  # by count, ties alphabetical
    assert WordVocabulary.fit(texts, min_freq=2).itos[4:] == ["a", "b"]
    assert WordVocabulary.fit(texts, max_size=5).itos == [*SPECIALS, "a"]
    ids, _ = WordVocabulary.fit(texts, min_freq=2, max_length=8).encode(["a c z"])
    assert ids[0, :5].tolist() == [BOS_ID, 4, UNK_ID, UNK_ID, EOS_ID]
    with pytest.raises(DataError, match="max_vocab"):
        WordVocabulary.fit(texts, max_size=3)


def test_lowercase_option() -> None:
    vocab = WordVocabulary.fit(["Paris paris"], lower=False)
    assert set(vocab.itos[4:]) == {"Paris", "paris"}
    assert WordVocabulary.fit(["Paris paris"]).itos[4:] == ["paris"]


def test_truncation_keeps_eos_and_reports_length() -> None:
    vocab = WordVocabulary.fit(["one two three four five six"], max_length=5)
    ids, lengths = vocab.encode(["one two three four five six"])
    assert ids[0].tolist() == [BOS_ID, *vocab.encode(["one two three"])[0][0, 1:4].tolist(), EOS_ID]
    assert lengths.tolist() == [6]
    with pytest.raises(DataError, match="max_length"):
        vocab.encode(["one"], max_length=2)


def test_decode_accepts_float_grids_and_stops_at_eos() -> None:
    vocab = WordVocabulary.fit(["a b c"])
    ids = np.array([[BOS_ID, 4, 5, EOS_ID, 6, 6], [BOS_ID, 4, PAD_ID, 5, 5, 5]], dtype=np.float32)
    assert vocab.decode(ids) == ["a b", "a"]
    assert vocab.decode(torch.tensor([BOS_ID, UNK_ID, 4, EOS_ID]), keep_unk=False) == ["a"]


@pytest.mark.parametrize("kind", ["word", "subword"])
def test_state_round_trip_is_json_and_identical(kind: str) -> None:
    tok = fit_tokenizer(TEXTS * 3, kind, max_vocab=120, min_freq=1, max_length=20)
    state = json.loads(json.dumps(tok.to_state()))
    back = tokenizer_from_state(state)
    assert type(back) is type(tok) and back.vocab_size == tok.vocab_size and back.max_length == 20
    torch.testing.assert_close(back.encode(TEXTS)[0], tok.encode(TEXTS)[0])
    assert tokenizer_facts(back) == {"vocab_size": tok.vocab_size, "max_length": 20, "tokenizer": kind,
                                     "pad_id": 0, "unk_id": 1, "bos_id": 2, "eos_id": 3}


def test_subword_round_trip_and_specials() -> None:
    tok = SubwordTokenizer.fit(TEXTS * 5, vocab_size=200, min_freq=1, max_length=40)
    for name, index in zip(SPECIALS, range(4)):
        assert tok.tokenizer.token_to_id(name) == index
    ids, _ = tok.encode(TEXTS)
    decoded = tok.decode(ids)
    # WordPiece pieces are glued back; only whitespace before punctuation may differ
    assert [d.replace(" ", "") for d in decoded] == [t.lower().replace(" ", "") for t in TEXTS]
    assert tok.vocab_size <= 200


def test_bad_state_and_kind() -> None:
    with pytest.raises(DataError, match="kind"):
        tokenizer_from_state({"kind": "chars"})
    with pytest.raises(DataError, match="word or subword"):
        fit_tokenizer(TEXTS, "bpe")
    with pytest.raises(DataError, match="must start with"):
        WordVocabulary(["a", "b", "c", "d"])


def test_word_pairs_follow_eos_and_survive_the_state() -> None:
    texts = ["how many dogs", "how many cats", "how far away", "a b"]
    vocab = WordVocabulary.fit(texts, ngrams=2, max_length=10)
    words = vocab.num_words
    # pairs held by >= 2 texts: only (how, many); ids after the words, text "how many"
    assert vocab.pairs == [(vocab.stoi["how"], vocab.stoi["many"])]
    assert vocab.vocab_size == words + 1 and vocab.id_to_token(words) == "how many"
    ids, lengths = vocab.encode(["how many birds how many"])
    row = ids[0].tolist()
    assert lengths.tolist() == [5]
    # <bos> 5 words (birds unknown) <eos>, then the pair twice, then padding
    assert row[:7] == [BOS_ID, vocab.stoi["how"], vocab.stoi["many"], UNK_ID, vocab.stoi["how"], vocab.stoi["many"], EOS_ID]
    assert row[7:] == [words, words, PAD_ID]
    assert vocab.decode(ids) == ["how many <unk> how many"]  # decoding stops at <eos>
    again = tokenizer_from_state(json.loads(json.dumps(vocab.to_state())))
    assert torch.equal(again.encode(["how many birds how many"])[0], ids) and again.vocab_size == vocab.vocab_size
    # the pairs fill only the room L leaves; without ngrams=2 there are none
    how, many, dogs = (vocab.stoi[w] for w in ("how", "many", "dogs"))
    assert vocab.encode(["how many dogs"], max_length=6)[0][0].tolist() == [BOS_ID, how, many, dogs, EOS_ID, words]
    assert vocab.encode(["how many dogs"], max_length=5)[0][0].tolist() == [BOS_ID, how, many, dogs, EOS_ID]
    assert WordVocabulary.fit(texts).pairs == []
    with pytest.raises(DataError, match="ngrams must be 1 or 2"):
        WordVocabulary.fit(texts, ngrams=3)
    with pytest.raises(DataError, match="needs tokenizer=word"):
        fit_tokenizer(texts, "subword", ngrams=2)


def test_word_pairs_need_a_share_of_the_texts_on_large_sets() -> None:
    from nebula.data.tokenize import PAIR_MIN_DF

    # 2,500 texts: the floor is ceil(0.001 * 2500) = 3 texts, above the bigram min_df of 2
    filler = [f"w{i} v{i}" for i in range(2494)]
    texts = filler + ["how many dogs"] * 3 + ["how far away"] * 2 + ["q w0"]
    assert math.ceil(PAIR_MIN_DF * len(texts)) == 3
    vocab = WordVocabulary.fit(texts, ngrams=2)
    kept = {vocab.id_to_token(vocab.num_words + j) for j in range(len(vocab.pairs))}
    assert kept == {"how many", "many dogs"}  # "how far" / "far away" are in 2 texts only


def test_sequence_ids_mask_everything_after_the_first_eos() -> None:
    from nebula.data.tokenize import sequence_ids

    ids = torch.tensor([[BOS_ID, 7, EOS_ID, 9, 9, PAD_ID], [BOS_ID, 5, 6, EOS_ID, PAD_ID, PAD_ID]])
    assert sequence_ids(ids).tolist() == [[BOS_ID, 7, EOS_ID, 0, 0, 0], [BOS_ID, 5, 6, EOS_ID, 0, 0]]
