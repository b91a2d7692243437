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

from nebula.data.tokenize import BOS_ID, EOS_ID, SPECIALS, SubwordTokenizer
from nebula.errors import DataError


class BPETokenizer(SubwordTokenizer):
    """BPE subwords (Metaspace pre-tokenisation, NFC normalisation), fitted on the training split; encoding,
    ids and state as :class:`~nebula.data.tokenize.SubwordTokenizer`.

    Args:
        tokenizer: a ``tokenizers.Tokenizer`` whose first four ids are the specials.
        max_length: the longest padded sequence (including <bos> and <eos>); longer texts are cut.
    """

    kind = "bpe"

    def __init__(self, tokenizer: Any, max_length: int = 128) -> None:
        super().__init__(tokenizer, max_length)

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

    def join(self, tokens: list[str]) -> str:
        return self.tokenizer.decoder.decode(tokens).strip() if tokens else ""

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
