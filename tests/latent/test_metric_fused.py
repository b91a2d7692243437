"""The fused order-3 losses (ratio and hinge, from latents) against the N x N forms and the brute-force N^3 formula."""

from __future__ import annotations

import pytest
import torch

from nebula.latent.metric import (
    PseudoLabelMetricLoss,
    hinge_triplet_loss,
    hinge_triplet_loss_from_latents,
    pairwise_sq_distances,
    ratio_triplet_loss,
    ratio_triplet_loss_from_latents,
)


def n3_triplets(z: torch.Tensor, labels: torch.Tensor, form: str, margin: float) -> torch.Tensor:
    """The literal formula: mean over (i, j, k), c_i = c_j, j != i, c_k != c_i, as an N x N x N tensor."""
    d2 = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
    same = labels[:, None] == labels[None, :]
    pos = (same & ~torch.eye(len(z), dtype=torch.bool)).to(z.dtype)
    mask = pos[:, :, None] * (~same).to(z.dtype)[:, None, :]
    if form == "ratio":
        value = d2[:, :, None] / (d2[:, None, :] + margin)
    else:
        value = torch.relu(d2[:, :, None] - d2[:, None, :] + margin)
    return (value * mask).sum() / mask.sum().clamp_min(1)


FUSED = {"ratio": ratio_triplet_loss_from_latents, "hinge": hinge_triplet_loss_from_latents}
SQUARE = {"ratio": ratio_triplet_loss, "hinge": hinge_triplet_loss}


@pytest.mark.parametrize("form", ["ratio", "hinge"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_value_and_gradient_match(form, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    n = [17, 40, 65][seed]
    # far from the origin and unsorted, non-contiguous label values: centring and class sorting must not matter
    z = (torch.randn(n, 5, generator=g, dtype=dtype) * 1.5 + 4.0).requires_grad_(True)
    labels = torch.randint(0, 4, (n,), generator=g) * 3 + 1
    margin = 0.7 if form == "ratio" else 6.0  # a hinge margin that leaves some triplets active and some not
    ours = FUSED[form](z, labels, margin)
    ref = n3_triplets(z, labels, form, margin)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ours, ref, **tol)
    torch.testing.assert_close(ours, SQUARE[form](pairwise_sq_distances(z), labels, margin), **tol)
    g1 = torch.autograd.grad(ours, z)[0]
    g2 = torch.autograd.grad(ref, z)[0]
    torch.testing.assert_close(g1, g2, **(dict(rtol=1e-4, atol=1e-5) if dtype == torch.float32 else tol))


@pytest.mark.parametrize("form", ["ratio", "hinge"])
def test_gradcheck_float64(form):
    g = torch.Generator().manual_seed(5)
    z = torch.randn(9, 3, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([2, 0, 2, 1, 0, 1, 1, 2, 0])
    assert torch.autograd.gradcheck(lambda t: FUSED[form](t, labels, 1.3), (z,))


@pytest.mark.parametrize("form", ["ratio", "hinge"])
def test_degenerate_batches_give_zero(form):
    z = torch.randn(6, 3, requires_grad=True)
    for labels in (torch.zeros(6, dtype=torch.long), torch.arange(6)):
        loss = FUSED[form](z, labels)
        assert loss.item() == 0.0
        (grad,) = torch.autograd.grad(loss, z)
        assert torch.isfinite(grad).all()


@pytest.mark.parametrize("form", ["ratio", "hinge"])
def test_module_uses_the_same_value_for_orders_3_and_minus_1(form):
    g = torch.Generator().manual_seed(4)
    z = torch.randn(30, 4, generator=g, dtype=torch.float64)
    anchors = torch.randn(5, 4, generator=g, dtype=torch.float64)
    dist = ((z[:, None] - anchors[None]) ** 2).sum(-1)
    labels = dist.argmin(1)
    d2 = pairwise_sq_distances(z)
    square = SQUARE[form](d2, labels, 0.5)
    loss = PseudoLabelMetricLoss(3, form=form, margin=0.5, hinge_margin=0.5)
    torch.testing.assert_close(loss(z, labels), square)
    expected = square + dist.gather(1, labels[:, None]).mean()
    torch.testing.assert_close(PseudoLabelMetricLoss(-1, form=form, margin=0.5, hinge_margin=0.5)(z, labels, dist), expected)
