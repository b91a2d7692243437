"""Token cross-entropy for text sequences (registered ``token_ce``).

Layout (see :mod:`nebula.data.tokenize`): targets are (N, L) int64 ids ``<bos> w_1 .. w_n <eos> <pad>..``
with ``<pad>`` = 0; decoder outputs are (N, L, V) logits aligned with the target, position t scoring
token t (position 0 is always ``<bos>`` and is not scored).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nebula.data.tokenize import PAD_ID, sequence_ids
from nebula.losses.reconstruction import register_reconstruction


def token_ids(logits: torch.Tensor) -> torch.Tensor:
    """Decoder logits (N, L, V) -> greedy token ids (N, L) int64 (the data space of text)."""
    return logits.argmax(-1)


@register_reconstruction("token_ce", to_data=token_ids)
def token_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample negative log-likelihood in nats, (N,):

        L_rec,i = - sum_{t=1}^{L-1} [y_it != <pad>] log softmax(logits_it)[y_it]

    logits: (N, L, V); target: (N, L) token ids (any dtype holding integers); positions after the
    first ``<eos>`` (a bag's word-pair ids, :func:`nebula.data.tokenize.sequence_ids`) are not scored.
    """
    n, length, vocab = logits.shape
    y = sequence_ids(target).clone()
    y[:, 0] = PAD_ID  # position 0 (<bos>) is given, not predicted; ignoring it avoids slicing the logits
    nll = F.cross_entropy(logits.reshape(-1, vocab).float(), y.reshape(-1), ignore_index=PAD_ID, reduction="none")
    return nll.view(n, length).sum(1)


def token_counts(target: torch.Tensor) -> torch.Tensor:
    """(N,) number of scored tokens per sample (non-pad positions after <bos>, <eos> included)."""
    return (target.long()[:, 1:] != PAD_ID).sum(1)
