"""Chamfer distance against a brute-force double loop; voxel BCE losses."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nebula.losses import get_reconstruction
from nebula.losses.chamfer import chamfer_distance, chamfer_loss
from nebula.losses.voxel import voxel_bce, voxel_bce_balanced


def brute_chamfer(x: torch.Tensor, y: torch.Tensor, reduction: str) -> torch.Tensor:
    """Double Python loop over point pairs, per sample."""
    out = []
    for xs, ys in zip(x, y):
        a = []
        for p in xs:
            a.append(min(float(((p - q) ** 2).sum()) for q in ys))
        b = []
        for q in ys:
            b.append(min(float(((q - p) ** 2).sum()) for p in xs))
        if reduction == "sum":
            out.append(sum(a) + sum(b))
        else:
            out.append(sum(a) / len(a) + sum(b) / len(b))
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("max_elements", [1, 64, 1 << 24])
def test_matches_brute_force(reduction: str, dtype: torch.dtype, max_elements: int) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 9, 3, generator=g, dtype=dtype)
    y = torch.randn(3, 6, 3, generator=g, dtype=dtype)
    got = chamfer_distance(x, y, reduction, max_elements=max_elements)
    torch.testing.assert_close(got.double(), brute_chamfer(x, y, reduction), rtol=1e-5, atol=1e-6)


def test_gradient_matches_dense_min() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 12, 3, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(2, 10, 3, generator=g, dtype=torch.float64, requires_grad=True)
    chamfer_distance(x, y, "sum", max_elements=16).sum().backward()
    gx, gy = x.grad.clone(), y.grad.clone()
    x.grad = y.grad = None
    d = ((x[:, :, None] - y[:, None]) ** 2).sum(-1)
    (d.min(2).values.sum() + d.min(1).values.sum()).backward()
    torch.testing.assert_close(gx, x.grad)
    torch.testing.assert_close(gy, y.grad)


def test_properties_and_registration() -> None:
    x = torch.randn(4, 20, 3)
    assert torch.allclose(chamfer_distance(x, x), torch.zeros(4))
    perm = x[:, torch.randperm(20)]
    assert torch.allclose(chamfer_distance(x, perm), torch.zeros(4))
    shifted = x + torch.tensor([0.1, 0.0, 0.0])
    assert (chamfer_distance(x, shifted) > 0).all()
    rec = get_reconstruction("chamfer")
    assert rec.loss is chamfer_loss and rec.loss(x, shifted).shape == (4,)
    with pytest.raises(ValueError):
        chamfer_distance(x, x, "max")


def test_voxel_bce() -> None:
    logits = torch.randn(3, 1, 4, 4, 4)
    target = (torch.rand(3, 1, 4, 4, 4) > 0.8).float()
    ref = F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum((1, 2, 3, 4))
    torch.testing.assert_close(voxel_bce(logits, target), ref)
    # balanced: with all-zero logits every voxel costs log 2 and the weights sum to the voxel count
    zero = torch.zeros_like(logits)
    torch.testing.assert_close(voxel_bce_balanced(zero, target), torch.full((3,), 64 * torch.log(torch.tensor(2.0)).item()))
    # an occupied voxel weighs more than an empty one when occupancy is sparse
    one = torch.zeros(1, 1, 4, 4, 4)
    one[0, 0, 0, 0, 0] = 1
    miss_pos = torch.zeros_like(one)
    miss_pos[0, 0, 0, 0, 0] = -5
    miss_neg = torch.zeros_like(one)
    miss_neg[0, 0, 1, 1, 1] = 5
    assert voxel_bce_balanced(miss_pos, one) - voxel_bce_balanced(torch.zeros_like(one), one) > \
        voxel_bce_balanced(miss_neg, one) - voxel_bce_balanced(torch.zeros_like(one), one)
    assert get_reconstruction("voxel_bce").to_data is torch.sigmoid
