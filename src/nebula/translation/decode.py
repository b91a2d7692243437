"""Batched greedy and beam-search decoding of a :class:`~nebula.translation.model.TranslationModel`.

Both encode the sources once and extend the decoder one position a step with cached keys and values
(:meth:`~nebula.translation.model.TranslationModel.step_logits`); the only Python loop is over output positions. Beam search keeps B hypotheses per sentence as one (N * B, t)
batch: each step scores all B * V continuations by their summed log-probabilities, keeps the top B per
sentence (finished hypotheses continue with <pad> at no cost) and at the end picks, per sentence, the
hypothesis with the best GNMT-normalised score  log p(y) / ((5 + |y|) / 6) ** alpha  (|y| counting <eos>).
With B = 1 this is greedy decoding.
"""

from __future__ import annotations

import torch

from nebula.translation.model import BOS, EOS, PAD, TranslationModel, trim


def max_length(model: TranslationModel, x: torch.Tensor, a: float | None = None, b: int | None = None) -> int:
    """Longest output for sources x (N, Ls): a * (longest source) + b, within the position table."""
    a = float(model.tc.max_len_a if a is None else a)
    b = int(model.tc.max_len_b if b is None else b)
    longest = int((x != PAD).sum(1).max()) if x.numel() else 1
    return max(1, min(int(a * longest + b), model.positions.shape[0] - 1))


@torch.no_grad()
def greedy(model: TranslationModel, x: torch.Tensor, z: torch.Tensor | None = None, limit: int | None = None) -> torch.Tensor:
    """(N, T) int64 output ids (no <bos>; <eos> then <pad> after it) for sources x (N, Ls); z (N, k)
    replaces the sentence latent mu(x) when given (decoding from anchors)."""
    memory, mem_pad, cond = model.prepare(trim(x), z)
    cache = model.start_cache(memory, mem_pad)
    n = len(x)
    seqs = torch.full((n, 1), BOS, dtype=torch.long, device=x.device)
    done = torch.zeros(n, dtype=torch.bool, device=x.device)
    for _ in range(limit or max_length(model, x)):
        tok = model.step_logits(seqs[:, -1], cache, cond).argmax(-1)
        tok = torch.where(done, torch.full_like(tok, PAD), tok)
        seqs = torch.cat([seqs, tok.unsqueeze(1)], 1)
        done |= tok == EOS
        if bool(done.all()):
            break
    return seqs[:, 1:]


@torch.no_grad()
def beam_search(model: TranslationModel, x: torch.Tensor, beam: int = 4, alpha: float = 0.6,
                z: torch.Tensor | None = None, limit: int | None = None) -> torch.Tensor:
    """(N, T) int64 output ids of the best hypothesis per source (module docstring); x (N, Ls), z as in :func:`greedy`."""
    n, k = len(x), max(int(beam), 1)
    memory, mem_pad, cond = model.prepare(trim(x), z)
    memory, mem_pad = memory.repeat_interleave(k, 0), mem_pad.repeat_interleave(k, 0)
    cond = cond.repeat_interleave(k, 0) if cond is not None else None
    cache = model.start_cache(memory, mem_pad)
    device = x.device
    seqs = torch.full((n * k, 1), BOS, dtype=torch.long, device=device)
    scores = torch.full((n, k), float("-inf"), device=device)
    scores[:, 0] = 0.0  # one live hypothesis per sentence to start with
    done = torch.zeros(n * k, dtype=torch.bool, device=device)
    lengths = torch.zeros(n * k, device=device)
    offsets = (torch.arange(n, device=device) * k).unsqueeze(1)
    for _ in range(limit or max_length(model, x)):
        logp = model.step_logits(seqs[:, -1], cache, cond).float().log_softmax(-1)
        vocab = logp.shape[-1]
        frozen = torch.full_like(logp, float("-inf"))
        frozen[:, PAD] = 0.0
        logp = torch.where(done.unsqueeze(1), frozen, logp)
        top, index = (scores.view(-1, 1) + logp).view(n, k * vocab).topk(k, dim=1)
        rows = (offsets + torch.div(index, vocab, rounding_mode="floor")).view(-1)
        tok = (index % vocab).view(-1)
        lengths = lengths[rows] + (~done[rows]).float()
        done = done[rows] | (tok == EOS)
        seqs = torch.cat([seqs[rows], tok.unsqueeze(1)], 1)
        model.reorder_cache(cache, rows)
        scores = top
        if bool(done.all()):
            break
    penalty = ((5.0 + lengths) / 6.0).pow(float(alpha)).view(n, k)
    best = (scores / penalty).argmax(1)
    return seqs[(offsets.squeeze(1) + best)][:, 1:]


def decode(model: TranslationModel, x: torch.Tensor, beam: int = 1, alpha: float = 0.6, z: torch.Tensor | None = None) -> torch.Tensor:
    """Greedy for ``beam`` <= 1, else beam search (eval mode is the caller's business)."""
    return greedy(model, x, z) if beam <= 1 else beam_search(model, x, beam, alpha, z)
