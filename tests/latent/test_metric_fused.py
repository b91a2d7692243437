"""The fused order-3 ratio loss (from latents) against the N x N form and the brute-force N^3 formula."""

from __future__ import annotations

import pytest
import torch

from nebula.latent.metric import (
    PseudoLabelMetricLoss,
    pairwise_sq_distances,
    ratio_triplet_loss,
    ratio_triplet_loss_from_latents,
)


def n3_ratio(z: torch.Tensor, labels: torch.Tensor, nu: float) -> torch.Tensor:
    d2 = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
    same = labels[:, None] == labels[None, :]
    pos = (same & ~torch.eye(len(z), dtype=torch.bool)).to(z.dtype)
    mask = pos[:, :, None] * (~same).to(z.dtype)[:, None, :]
    return (d2[:, :, None] / (d2[:, None, :] + nu) * mask).sum() / mask.sum().clamp_min(1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_value_and_gradient_match(dtype, seed):
    g = torch.Generator().manual_seed(seed)
    n = [17, 40, 65][seed]
    # far from the origin and unsorted, non-contiguous label values: centring and class sorting must not matter
    z = (torch.randn(n, 5, generator=g, dtype=dtype) * 1.5 + 4.0).requires_grad_(True)
    labels = torch.randint(0, 4, (n,), generator=g) * 3 + 1
    ours = ratio_triplet_loss_from_latents(z, labels, 0.7)
    ref = n3_ratio(z, labels, 0.7)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ours, ref, **tol)
    torch.testing.assert_close(ours, ratio_triplet_loss(pairwise_sq_distances(z), labels, 0.7), **tol)
    g1 = torch.autograd.grad(ours, z)[0]
    g2 = torch.autograd.grad(ref, z)[0]
    torch.testing.assert_close(g1, g2, **(dict(rtol=1e-4, atol=1e-5) if dtype == torch.float32 else tol))


def test_gradcheck_float64():
    g = torch.Generator().manual_seed(5)
    z = torch.randn(9, 3, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([2, 0, 2, 1, 0, 1, 1, 2, 0])
    assert torch.autograd.gradcheck(lambda t: ratio_triplet_loss_from_latents(t, labels, 1.3), (z,))


def test_degenerate_batches_give_zero():
    z = torch.randn(6, 3, requires_grad=True)
    for labels in (torch.zeros(6, dtype=torch.long), torch.arange(6)):
        loss = ratio_triplet_loss_from_latents(z, labels)
        assert loss.item() == 0.0
        (grad,) = torch.autograd.grad(loss, z)
        assert torch.isfinite(grad).all()


def test_module_uses_the_same_value_for_orders_3_and_minus_1():
    g = torch.Generator().manual_seed(4)
    z = torch.randn(30, 4, generator=g, dtype=torch.float64)
    anchors = torch.randn(5, 4, generator=g, dtype=torch.float64)
    dist = ((z[:, None] - anchors[None]) ** 2).sum(-1)
    labels = dist.argmin(1)
    d2 = pairwise_sq_distances(z)
    torch.testing.assert_close(PseudoLabelMetricLoss(3, margin=0.5)(z, labels), ratio_triplet_loss(d2, labels, 0.5))
    expected = ratio_triplet_loss(d2, labels, 0.5) + dist.gather(1, labels[:, None]).mean()
    torch.testing.assert_close(PseudoLabelMetricLoss(-1, margin=0.5)(z, labels, dist), expected)
