"""NT-Xent against a brute-force loop over anchors."""

from __future__ import annotations

import math

import pytest
import torch

from nebula.contrastive.losses import nt_xent, pairwise_similarity


def _sim(a: torch.Tensor, b: torch.Tensor, kind: str) -> float:
    if kind == "cosine":
        return float(a @ b / (a.norm() * b.norm()))
    return float(-((a - b) ** 2).mean())


def brute_force_nt_xent(a, p, temperature, kind, extra=None) -> float:
    u = torch.cat([a, p])
    n = len(a)
    total = 0.0
    for i in range(2 * n):
        pos = i + n if i < n else i - n
        others = [j for j in range(2 * n) if j != i]
        logits = [_sim(u[i], u[j], kind) / temperature for j in others]
        if extra is not None:
            logits += [_sim(u[i], e, kind) / temperature for e in extra]
        log_den = math.log(sum(math.exp(v) for v in logits))
        total += -(_sim(u[i], u[pos], kind) / temperature - log_den)
    return total / (2 * n)


@pytest.mark.parametrize("kind", ["cosine", "mse"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("with_extra", [False, True])
def test_nt_xent_matches_brute_force(kind, dtype, with_extra):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(6, 5, generator=g, dtype=dtype)
    p = a + 0.3 * torch.randn(6, 5, generator=g, dtype=dtype)
    extra = torch.randn(4, 5, generator=g, dtype=dtype) if with_extra else None
    got = nt_xent(a, p, temperature=0.5, similarity=kind, extra_negatives=extra)
    want = brute_force_nt_xent(a.double(), p.double(), 0.5, kind, None if extra is None else extra.double())
    assert got.dtype == dtype
    assert float(got) == pytest.approx(want, rel=1e-4 if dtype == torch.float32 else 1e-9)


def test_nt_xent_prefers_aligned_pairs_and_has_gradient():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(16, 8, generator=g, requires_grad=True)
    aligned = nt_xent(a, a.detach() + 0.01 * torch.randn(16, 8, generator=g))
    shuffled = nt_xent(a, a.detach()[torch.randperm(16, generator=g)])
    assert aligned < shuffled
    aligned.backward()
    assert torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0


def test_pairwise_similarity_rejects_unknown_kind():
    with pytest.raises(ValueError, match="similarity"):
        pairwise_similarity(torch.zeros(2, 2), torch.zeros(2, 2), "dot")
