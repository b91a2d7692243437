"""Byte-pair-encoding subwords for translation, trained with the ``tokenizers`` library.

Unlike the text modality's WordPiece (lower-cased, accents stripped) this tokenizer keeps the text
as it is (NFC only), marks word starts with ``▁`` (SentencePiece's Metaspace) and so decodes back to
the detokenised sentence, which is what sacreBLEU scores. Ids follow :mod:`nebula.data.tokenize`:
``<pad>`` = 0, ``<unk>`` = 1, ``<bos>`` = 2, ``<eos>`` = 3.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from nebula.data.tokenize import BOS_ID, EOS_ID, SPECIALS, TextTokenizer
from nebula.errors import DataError


class BPETokenizer(TextTokenizer):
    """BPE subwords (Metaspace pre-tokenisation, NFC normalisation), fitted on the training split.

    Args:
        tokenizer: a ``tokenizers.Tokenizer`` whose first four ids are the specials.
        max_length: the longest padded sequence (including <bos> and <eos>); longer texts are cut.
    """

    kind = "bpe"

    def __init__(self, tokenizer: Any, max_length: int = 128) -> None:
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        for index, name in enumerate(SPECIALS):
            if tokenizer.token_to_id(name) != index:
                raise DataError(f"bpe tokenizer must map {name} to id {index}, found {tokenizer.token_to_id(name)}")

    @classmethod
    def fit(cls, texts: Sequence[str], vocab_size: int = 8000, min_freq: int = 2, max_length: int = 128) -> BPETokenizer:
        """Learn at most ``vocab_size`` symbols (specials and characters included) from ``texts``."""
        from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

        tok = Tokenizer(models.BPE(unk_token=SPECIALS[1]))
        tok.normalizer = normalizers.NFC()
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        trainer = trainers.BpeTrainer(vocab_size=int(vocab_size), min_frequency=int(min_freq),
                                      special_tokens=list(SPECIALS), show_progress=False)
        tok.train_from_iterator(list(texts), trainer=trainer)
        return cls(tok, max_length)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> BPETokenizer:
        from tokenizers import Tokenizer

        return cls(Tokenizer.from_str(state["tokenizer"]), state.get("max_length", 128))

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
        return self.tokenizer.id_to_token(index) or SPECIALS[1]

    def join(self, tokens: list[str]) -> str:
        return self.tokenizer.decoder.decode(tokens).strip() if tokens else ""

    def to_state(self) -> dict[str, Any]:
        return {"kind": self.kind, "tokenizer": self.tokenizer.to_str(), "max_length": self.max_length}

    def pad(self, texts: Sequence[str], length: int | None = None) -> torch.Tensor:
        """texts -> (N, L) int64 ``[<bos>, t_1 .. t_n, <eos>, <pad> ...]`` with L = the longest text + 2
        (at most ``max_length``; ``length`` fixes it)."""
        rows = self.batch_ids(texts)
        longest = max((len(r) for r in rows), default=0) + 2
        size = int(length) if length is not None else min(self.max_length, longest)
        if size < 3:
            raise DataError(f"translation max_length must be >= 3 (<bos>, one token, <eos>), found {size}")
        out = np.zeros((len(rows), size), dtype=np.int64)
        for i, ids in enumerate(rows):
            ids = ids[: size - 2]
            out[i, 0] = BOS_ID
            out[i, 1 : 1 + len(ids)] = ids
            out[i, 1 + len(ids)] = EOS_ID
        return torch.from_numpy(out)
