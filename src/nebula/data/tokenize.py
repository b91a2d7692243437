"""Tokenisers for the text modality: a word-level vocabulary and an optional subword (WordPiece) model.

Both turn a list of strings into a padded (N, L) int64 tensor laid out as

    [<bos>, t_1, ..., t_n, <eos>, <pad>, ..., <pad>]     (n <= L - 2, longer texts are truncated)

or, for a word vocabulary fitted with ``ngrams=2``, ``[<bos>, t_1 .. t_n, <eos>, g_1 .. g_k, <pad>..]``
where g_j are the ids of the text's known word pairs (t_i, t_i+1) (a bag-of-words coder counts every
non-pad token; a sequence ends at its first ``<eos>``: :func:`sequence_ids` masks the pairs out), with
the fixed special ids ``<pad>`` = 0, ``<unk>`` = 1, ``<bos>`` = 2, ``<eos>`` = 3 (the token
cross-entropy ignores id 0 without being told the vocabulary). A tokeniser is fitted on the training
split only and travels with a run as a JSON-able ``state`` dict (``meta["state"]`` of the dataset,
``data_state.json`` / ``run.json`` of the run), from which :func:`tokenizer_from_state` rebuilds it.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from nebula.errors import DataError

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
NUM_SPECIAL_IDS = len(SPECIALS)
#: words (with an inner apostrophe: don't, o'clock) or single punctuation marks
DEFAULT_PATTERN = r"\w+(?:'\w+)*|[^\w\s]"
#: a word pair becomes a token only when at least this fraction of the training texts hold it (``ngrams=2``);
#: measured on the LSA-100 probe of the dev sets, docs/text.md "Frequent word pairs", python -m benchmarks.text_pairs
PAIR_MIN_DF = 0.001


class TextTokenizer:
    """Shared interface: ``tokens(text)``, ``token_ids(tokens)``, ``encode``, ``decode``, ``to_state``."""

    kind = "base"
    max_length: int
    #: word-id pairs that are tokens too (ids from ``num_words`` on); only a word vocabulary has them
    pairs: Sequence[tuple[int, int]] = ()

    @property
    def num_words(self) -> int:
        """Ids below this are single tokens; the word-pair ids follow them."""
        return self.vocab_size - len(self.pairs)

    @property
    def vocab_size(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def special_ids(self) -> dict[str, int]:
        return {"pad_id": PAD_ID, "unk_id": UNK_ID, "bos_id": BOS_ID, "eos_id": EOS_ID}

    def ids(self, text: str) -> list[int]:  # pragma: no cover - abstract
        """Token ids of one text, without <bos>/<eos>."""
        raise NotImplementedError

    def id_to_token(self, index: int) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def batch_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text (without <bos>/<eos>)."""
        return [self.ids(t) for t in texts]

    def join(self, tokens: list[str]) -> str:
        return " ".join(tokens)

    def pair_ids(self, ids: list[int]) -> list[int]:
        """Ids of the known word pairs of a text's token ids (in order); none without ``ngrams=2``."""
        return []

    def encode(self, texts: Sequence[str], max_length: int | None = None) -> tuple[torch.Tensor, np.ndarray]:
        """texts -> (ids (N, L) int64, lengths (N,) number of tokens before truncation, without bos/eos).

        L = ``max_length`` (default the tokenizer's); a text longer than L - 2 tokens is cut to L - 2.
        """
        length = int(max_length or self.max_length)
        if length < 3:
            raise DataError(f"text max_length must be >= 3 (<bos>, one token, <eos>), found {length}")
        out = np.zeros((len(texts), length), dtype=np.int64)
        lengths = np.zeros(len(texts), dtype=np.int64)
        room = length - 2
        for i, ids in enumerate(self.batch_ids(texts)):
            lengths[i] = len(ids)
            ids = ids[:room]
            out[i, 0] = BOS_ID
            out[i, 1 : 1 + len(ids)] = ids
            out[i, 1 + len(ids)] = EOS_ID
            pairs = self.pair_ids(ids)[: room - len(ids)]
            out[i, 2 + len(ids) : 2 + len(ids) + len(pairs)] = pairs
        return torch.from_numpy(out), lengths

    def decode(self, ids: torch.Tensor | np.ndarray | Sequence[Sequence[int]], keep_unk: bool = True) -> list[str]:
        """(N, L) ids -> N strings: stops at the first <eos> (or <pad> after the first token), skips <bos>.

        Data-space arrays may arrive as floats (decoded samples); they are rounded to ints.
        """
        array = np.rint(np.asarray(ids.cpu() if isinstance(ids, torch.Tensor) else ids, dtype=np.float64)).astype(np.int64)
        if array.ndim == 1:
            array = array[None]
        texts = []
        for row in array:
            tokens: list[str] = []
            for j, t in enumerate(row):
                t = int(t)
                if t == EOS_ID or (t == PAD_ID and j > 0):
                    break
                if t in (BOS_ID, PAD_ID) or (t == UNK_ID and not keep_unk):
                    continue
                tokens.append(self.id_to_token(t) if 0 <= t < self.vocab_size else UNK)
            texts.append(self.join(tokens))
        return texts

    def to_state(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError


class WordVocabulary(TextTokenizer):
    """Word-level vocabulary: regex tokens, optional lower-casing, ids by decreasing training frequency.

    Args:
        tokens: the id -> token list, the four specials first.
        lower: lower-case texts before tokenising.
        pattern: ``re`` pattern whose matches are the tokens.
        max_length: default padded length L (including <bos> and <eos>).
        pairs: word-id pairs (a, b) that are tokens too, ids ``len(tokens) + j`` (token text "a b").
    """

    kind = "word"

    def __init__(self, tokens: Sequence[str], lower: bool = True, pattern: str = DEFAULT_PATTERN, max_length: int = 32,
                 pairs: Sequence[Sequence[int]] = ()) -> None:
        tokens = list(tokens)
        if tuple(tokens[:4]) != SPECIALS:
            raise DataError(f"word vocabulary must start with {list(SPECIALS)}, found {tokens[:4]}")
        words = len(tokens)
        self.pairs = [(int(a), int(b)) for a, b in pairs]
        if any(not (NUM_SPECIAL_IDS <= a < words and NUM_SPECIAL_IDS <= b < words) for a, b in self.pairs):
            raise DataError("word vocabulary: a word pair refers to an id outside the vocabulary's words")
        self.pair_index = {p: words + j for j, p in enumerate(self.pairs)}
        self.itos = tokens + [f"{tokens[a]} {tokens[b]}" for a, b in self.pairs]
        self.stoi = {t: i for i, t in enumerate(tokens)}
        self.lower = bool(lower)
        self.pattern = pattern
        self._regex = re.compile(pattern)
        self.max_length = int(max_length)

    @classmethod
    def fit(cls, texts: Sequence[str], max_size: int | None = 20000, min_freq: int = 1, lower: bool = True,
            pattern: str = DEFAULT_PATTERN, max_length: int = 32, ngrams: int = 1) -> WordVocabulary:
        """Count regex tokens of ``texts`` (the training split) and keep those seen at least ``min_freq``
        times, the most frequent first (ties alphabetical), at most ``max_size`` entries including the 4
        specials. ``ngrams=2`` adds the pairs of adjacent kept words found in at least
        ``max(2, min_freq)`` training texts (the ``min_df`` of a bigram tf-idf), the most frequent
        first, at most as many pairs as words."""
        regex = re.compile(pattern)
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(regex.findall(text.lower() if lower else text))
        for s in SPECIALS:
            counts.pop(s, None)
        kept = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
        if max_size is not None:
            if max_size < len(SPECIALS) + 1:
                raise DataError(f"text max_vocab must be >= {len(SPECIALS) + 1}, found {max_size}")
            kept = kept[: max_size - len(SPECIALS)]
        if isinstance(ngrams, bool) or ngrams not in (1, 2):
            raise DataError(f"text ngrams must be 1 or 2, found {ngrams!r}")
        vocab = cls([*SPECIALS, *kept], lower, pattern, max_length)
        if ngrams == 2:
            min_df = max(2, min_freq, math.ceil(PAIR_MIN_DF * len(texts)))
            vocab = cls(vocab.itos, lower, pattern, max_length, vocab.frequent_pairs(texts, min_df))
        return vocab

    def frequent_pairs(self, texts: Sequence[str], min_df: int) -> list[tuple[int, int]]:
        """Adjacent pairs of known words held by at least ``min_df`` of ``texts``, by decreasing
        document frequency (ties by id), at most as many as the vocabulary has words."""
        df: Counter[tuple[int, int]] = Counter()
        for text in texts:
            ids = self.ids(text)
            df.update({(a, b) for a, b in zip(ids, ids[1:]) if a >= NUM_SPECIAL_IDS and b >= NUM_SPECIAL_IDS})
        kept = sorted((p for p, c in df.items() if c >= min_df), key=lambda p: (-df[p], p))
        return kept[: self.num_words - NUM_SPECIAL_IDS]

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def tokens(self, text: str) -> list[str]:
        return self._regex.findall(text.lower() if self.lower else text)

    def ids(self, text: str) -> list[int]:
        get = self.stoi.get
        return [get(t, UNK_ID) for t in self.tokens(text)]

    def pair_ids(self, ids: list[int]) -> list[int]:
        if not self.pair_index:
            return []
        get = self.pair_index.get
        return [j for j in (get(p) for p in zip(ids, ids[1:])) if j is not None]

    def id_to_token(self, index: int) -> str:
        return self.itos[index]

    def to_state(self) -> dict[str, Any]:
        return {"kind": self.kind, "tokens": list(self.itos[: self.num_words]), "lower": self.lower,
                "pattern": self.pattern, "max_length": self.max_length, "pairs": [list(p) for p in self.pairs]}


class SubwordTokenizer(TextTokenizer):
    """WordPiece subwords trained with the ``tokenizers`` library on the training split.

    Normalisation: NFD, accents stripped, optional lower-casing; pre-tokenisation on whitespace and
    punctuation; ``##`` continuation pieces are glued back on decoding.
    """

    kind = "subword"

    def __init__(self, tokenizer: Any, max_length: int = 32) -> None:
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        for name, index in zip(SPECIALS, range(4)):
            if tokenizer.token_to_id(name) != index:
                raise DataError(f"{self.kind} tokenizer must map {name} to id {index}, found {tokenizer.token_to_id(name)}")

    @classmethod
    def fit(cls, texts: Sequence[str], vocab_size: int = 8000, min_freq: int = 2, lower: bool = True,
            max_length: int = 32) -> SubwordTokenizer:
        from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

        tok = Tokenizer(models.WordPiece(unk_token=UNK))
        steps = [normalizers.NFD(), normalizers.StripAccents()] + ([normalizers.Lowercase()] if lower else [])
        tok.normalizer = normalizers.Sequence(steps)
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
        tok.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(vocab_size=int(vocab_size), min_frequency=int(min_freq),
                                            special_tokens=list(SPECIALS), show_progress=False)
        tok.train_from_iterator(list(texts), trainer=trainer)
        return cls(tok, max_length)

    @property
    def vocab_size(self) -> int:
        return int(self.tokenizer.get_vocab_size())

    def tokens(self, text: str) -> list[str]:
        return list(self.tokenizer.encode(text, add_special_tokens=False).tokens)

    def ids(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def batch_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return [list(e.ids) for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    def id_to_token(self, index: int) -> str:
        return self.tokenizer.id_to_token(index) or UNK

    def join(self, tokens: list[str]) -> str:
        return self.tokenizer.decoder.decode(tokens) if tokens else ""

    def to_state(self) -> dict[str, Any]:
        return {"kind": self.kind, "tokenizer": self.tokenizer.to_str(), "max_length": self.max_length}


def fit_tokenizer(texts: Sequence[str], kind: str = "word", max_vocab: int | None = 20000, min_freq: int = 1,
                  lower: bool = True, max_length: int = 32, pattern: str = DEFAULT_PATTERN, ngrams: int = 1) -> TextTokenizer:
    """A ``word`` or ``subword`` tokenizer fitted on ``texts`` (the training split); ``ngrams=2``
    (word only) adds frequent word pairs as tokens (:meth:`WordVocabulary.fit`)."""
    if kind == "word":
        return WordVocabulary.fit(texts, max_vocab, min_freq, lower, pattern, max_length, ngrams)
    if isinstance(ngrams, bool) or ngrams != 1:
        raise DataError(f"text ngrams={ngrams!r} needs tokenizer=word (found {kind!r})")
    if kind == "subword":
        return SubwordTokenizer.fit(texts, max_vocab or 8000, max(min_freq, 1), lower, max_length)
    raise DataError(f"text tokenizer must be word or subword, found {kind!r}")


def tokenizer_from_state(state: dict[str, Any]) -> TextTokenizer:
    """Rebuild a tokenizer from its ``to_state()`` dict (the run's ``data_state``)."""
    kind = state.get("kind") if isinstance(state, dict) else None
    if kind == "word":
        return WordVocabulary(state["tokens"], state.get("lower", True), state.get("pattern", DEFAULT_PATTERN),
                              state.get("max_length", 32), state.get("pairs", ()))
    if kind == "subword":
        from tokenizers import Tokenizer

        return SubwordTokenizer(Tokenizer.from_str(state["tokenizer"]), state.get("max_length", 32))
    raise DataError(f"text state: expected kind 'word' or 'subword', found {kind!r}")


def tokenizer_facts(tok: TextTokenizer) -> dict[str, Any]:
    """vocab_size, max_length and the special ids: what the sequence networks need (model.options)."""
    return {"vocab_size": tok.vocab_size, "max_length": tok.max_length, "tokenizer": tok.kind, **tok.special_ids()}


def sequence_ids(ids: torch.Tensor) -> torch.Tensor:
    """(N, L) ids with every position after the first ``<eos>`` set to ``<pad>``: the sequence a
    sequence encoder, decoder or token cross-entropy reads (the word-pair ids a bag of words counts
    follow ``<eos>``; module docstring). Ids without pairs come back unchanged."""
    ids = ids.long()
    after = (ids == EOS_ID).long().cumsum(1) - (ids == EOS_ID).long() > 0
    return ids.masked_fill(after, PAD_ID)
