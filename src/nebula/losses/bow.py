"""Bag-of-words reconstruction for text (registered ``bow_nll``): the multinomial likelihood of a
text's tokens under one distribution over the vocabulary (NVDM, Miao et al. 2016).

Decoder outputs are (N, V) logits; targets the (N, L) token ids ``<bos> w_1 .. w_n <eos> <pad>..``.
The scored tokens are those of the token cross-entropy (every non-pad position after ``<bos>``,
``<eos>`` included), so per-token figures of both objectives share a denominator:

    L_rec,i = - sum_{t=1}^{L-1} [y_it != <pad>] log softmax(logits_i)[y_it]
            = - sum_v c_iv log p_iv        (c_iv: count of token v in text i; order ignored)
"""

from __future__ import annotations

import torch

from nebula.data.tokenize import BOS_ID, EOS_ID, PAD_ID
from nebula.losses.reconstruction import register_reconstruction

#: words shown for one bag: the most probable non-special tokens, in decreasing probability
TOP_WORDS = 12


def top_words(logits: torch.Tensor) -> torch.Tensor:
    """(N, V) logits -> (N, TOP_WORDS + 2) ids ``<bos> w_1 .. w_k <eos>``: the k most probable words (ids
    >= 4), the data-space rendering of a bag (anchor samples list an anchor's topic words)."""
    if logits.dim() != 2:
        return logits.argmax(-1)
    words = logits[:, 4:]
    k = min(TOP_WORDS, words.shape[1])
    top = words.topk(k, dim=1).indices + 4
    n = len(logits)
    bos = torch.full((n, 1), BOS_ID, dtype=torch.long, device=logits.device)
    eos = torch.full((n, 1), EOS_ID, dtype=torch.long, device=logits.device)
    return torch.cat([bos, top, eos], 1)


@register_reconstruction("bow_nll", to_data=top_words)
def bow_nll(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample bag-of-words NLL in nats, (N,); logits (N, V), target (N, L) token ids."""
    y = target.long()[:, 1:]
    logp = torch.log_softmax(logits.float(), dim=1)
    picked = logp.gather(1, y)
    return -(picked * (y != PAD_ID)).sum(1)


def text_to_data(output: torch.Tensor) -> torch.Tensor:
    """Token ids of a text decoder's output: argmax of (N, L, V) logits, top words of (N, V) logits."""
    return top_words(output)


@register_reconstruction("text_nll", to_data=text_to_data)
def text_nll(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The text modality's default: token cross-entropy for sequence logits (N, L, V), bag-of-words NLL
    for vocabulary logits (N, V); (N,) nats either way, over the same scored tokens."""
    from nebula.losses.token import token_cross_entropy

    return token_cross_entropy(output, target) if output.dim() == 3 else bow_nll(output, target)
