"""Metric losses against a literal brute-force N^3 transcription (the reference's form, bugs fixed)."""

from __future__ import annotations

import pytest
import torch

from nebula.latent.anchors import squared_distances
from nebula.latent.metric import (
    PseudoLabelMetricLoss,
    anchor_pull_loss,
    hinge_triplet_loss,
    intra_cluster_loss,
    pairwise_sq_distances,
    ratio_triplet_loss,
)


def brute_triplets(d2: torch.Tensor, labels: torch.Tensor, fn) -> torch.Tensor:
    """Literal loop over (i, j, k) with c_i = c_j, j != i, c_i != c_k; 0 when none is valid."""
    n = len(labels)
    total, count = d2.new_zeros(()), 0
    for i in range(n):
        for j in range(n):
            for k in range(n):
                if j != i and labels[i] == labels[j] and labels[i] != labels[k]:
                    total = total + fn(d2[i, j], d2[i, k])
                    count += 1
    return total / count if count else d2.new_zeros(())


def brute_n3_tensor(z: torch.Tensor, labels: torch.Tensor, nu: float) -> torch.Tensor:
    """The reference's N x N x N tensor formula (masks fixed for R4/R5), for small N only."""
    d2 = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(z), dtype=torch.bool)
    pos = (same & ~eye).to(z.dtype)
    neg = (~same).to(z.dtype)
    mask = pos[:, :, None] * neg[:, None, :]
    ratio = d2[:, :, None] / (d2[:, None, :] + nu)
    return (ratio * mask).sum() / mask.sum().clamp_min(1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("seed", [0, 1])
def test_ratio_and_hinge_match_brute_force(dtype, seed):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(14, 3, generator=g, dtype=dtype)
    labels = torch.randint(0, 3, (14,), generator=g)
    d2 = pairwise_sq_distances(z)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ratio_triplet_loss(d2, labels, 0.7), brute_triplets(d2, labels, lambda a, b: a / (b + 0.7)), **tol)
    torch.testing.assert_close(ratio_triplet_loss(d2, labels, 0.7), brute_n3_tensor(z, labels, 0.7), **tol)
    torch.testing.assert_close(hinge_triplet_loss(d2, labels, 1.3),
                               brute_triplets(d2, labels, lambda a, b: torch.relu(a - b + 1.3)), **tol)


def test_gradients_match_brute_force():
    g = torch.Generator().manual_seed(3)
    z = torch.randn(10, 2, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, 1, 2, 2, 0, 1, 2])
    for ours, ref in [
        (lambda d: ratio_triplet_loss(d, labels, 1.0), lambda d: brute_triplets(d, labels, lambda a, b: a / (b + 1.0))),
        (lambda d: hinge_triplet_loss(d, labels, 2.0), lambda d: brute_triplets(d, labels, lambda a, b: torch.relu(a - b + 2.0))),
    ]:
        g1 = torch.autograd.grad(ours(pairwise_sq_distances(z)), z)[0]
        g2 = torch.autograd.grad(ref(pairwise_sq_distances(z)), z)[0]
        assert torch.isfinite(g1).all()
        torch.testing.assert_close(g1, g2)


def test_no_valid_triplet_gives_zero_not_nan():
    z = torch.randn(6, 3, requires_grad=True)
    for labels in (torch.zeros(6, dtype=torch.long), torch.arange(6)):  # one cluster / all singletons
        d2 = pairwise_sq_distances(z)
        for loss in (ratio_triplet_loss(d2, labels), hinge_triplet_loss(d2, labels)):
            assert loss.item() == 0.0
            (grad,) = torch.autograd.grad(loss, z, retain_graph=True)
            assert torch.isfinite(grad).all()


def test_self_is_never_a_positive():
    # two samples, different labels except the pair (0, 0) with itself: no positive exists
    z = torch.tensor([[0.0, 0.0], [3.0, 0.0]])
    labels = torch.tensor([0, 1])
    assert ratio_triplet_loss(pairwise_sq_distances(z), labels).item() == 0.0


def test_order_1_and_2():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(9, 4, generator=g, dtype=torch.float64)
    anchors = torch.randn(3, 4, generator=g, dtype=torch.float64)
    dist = squared_distances(z, anchors)
    labels = dist.argmin(1)
    expected1 = sum(((z[i] - anchors[labels[i]]) ** 2).sum() for i in range(9)) / 9
    torch.testing.assert_close(anchor_pull_loss(dist, labels), expected1)
    d2 = pairwise_sq_distances(z)
    expected2 = sum(((z[i] - z[j]) ** 2).sum() for i in range(9) for j in range(9) if i != j and labels[i] == labels[j]) / 81
    torch.testing.assert_close(intra_cluster_loss(d2, labels), expected2)
    loss = PseudoLabelMetricLoss(-1, margin=1.0)(z, labels, dist)
    torch.testing.assert_close(loss, anchor_pull_loss(dist, labels) + ratio_triplet_loss(d2, labels, 1.0))


@pytest.mark.parametrize("n", [1024, pytest.param(4096, marks=pytest.mark.slow)])
def test_large_batch_uses_quadratic_memory(n):
    """N = 4096 would need 4096^3 * 4 B = 275 GB as an N^3 tensor; ours runs in N^2 memory."""
    z = torch.randn(n, 32, requires_grad=True)
    labels = torch.randint(0, 10, (n,))
    for form in ("ratio", "hinge"):
        loss = PseudoLabelMetricLoss(3, form=form)(z, labels)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(z.grad).all()
        z.grad = None
