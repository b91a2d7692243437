"""Lie group operators: matrix exponential, Laplace sampling / KL, soft threshold, warm-ups, clipping."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from nebula.contrastive.fewshot import single_thread
from nebula.latent.lie import (
    LieOperators,
    VariationalLieOperators,
    exponential_warmup,
    init_operators,
    laplace_kl,
    laplace_sample,
    soft_threshold,
)


def test_init_is_block_rotation_structure():
    psi = init_operators(3, 2, 6, torch.Generator().manual_seed(0))
    assert psi.shape == (3, 2, 6, 6)
    block = psi[1, 0]
    # only 2x2 diagonal blocks [[r, -w], [w, r]] are non-zero
    mask = torch.zeros(6, 6, dtype=torch.bool)
    for i in range(0, 6, 2):
        mask[i : i + 2, i : i + 2] = True
        assert block[i, i] == block[i + 1, i + 1]
        assert block[i, i + 1] == -block[i + 1, i]
        assert block[i, i].abs() <= 0.5e-4 and block[i + 1, i].abs() <= 3.0
    assert (block[~mask] == 0).all()


@pytest.mark.parametrize("block_size", [4, 8])
def test_transform_matches_scipy_expm(block_size):
    g = torch.Generator().manual_seed(1)
    ops = LieOperators(5, 2 * block_size, block_size, generator=g)
    with torch.no_grad():
        ops.psi.add_(0.3 * torch.randn(ops.psi.shape, generator=g))  # not only rotations
    c = 0.4 * torch.randn(7, 5, generator=g)
    t = ops.transform(c)
    assert t.dtype == torch.float32 and t.shape == (7, 2, block_size, block_size)
    psi = ops.psi.detach().double().numpy()
    for n in range(7):
        for s in range(2):
            a = np.einsum("m,mij->ij", c[n].double().numpy(), psi[:, s])
            np.testing.assert_allclose(t[n, s].detach().numpy(), scipy.linalg.expm(a), rtol=1e-4, atol=1e-5)
    # applying T to z equals the block-diagonal matrix from scipy times z
    z = torch.randn(7, 2 * block_size, generator=g)
    moved = ops(z, c).detach().numpy()
    for n in range(7):
        blocks = [scipy.linalg.expm(np.einsum("m,mij->ij", c[n].double().numpy(), psi[:, s])) for s in range(2)]
        np.testing.assert_allclose(moved[n], scipy.linalg.block_diag(*blocks) @ z[n].double().numpy(), rtol=1e-4, atol=1e-5)


def test_operator_passes_extra_dims_through_and_zero_coefficients_are_identity():
    ops = LieOperators(4, 8, 4, generator=torch.Generator().manual_seed(0))
    z = torch.randn(3, 12)
    out = ops(z, torch.zeros(3, 4))
    torch.testing.assert_close(out, z, rtol=1e-6, atol=1e-6)
    out = ops(z, torch.randn(3, 4))
    torch.testing.assert_close(out[:, 8:], z[:, 8:])
    assert not torch.allclose(out[:, :8], z[:, :8])


def test_operator_double_input_keeps_float32_exponential():
    ops = LieOperators(2, 4, 4)
    z = torch.randn(2, 4, dtype=torch.float64)
    out = ops(z, torch.randn(2, 2, dtype=torch.float64))
    assert out.dtype == torch.float64


def _laplace_log_density(x, mu, b):
    return -torch.log(2 * b) - (x - mu).abs() / b


@pytest.mark.parametrize("params", [(0.0, 1.0, 0.0, 1.0), (0.3, 0.5, -0.2, 1.5), (1.0, 0.1, 0.0, 0.3)])
def test_laplace_kl_matches_monte_carlo(params):
    mq, bq, mp, bp = (torch.tensor(v, dtype=torch.float64) for v in params)
    n = 200_000
    g = torch.Generator().manual_seed(0)
    x = laplace_sample(mq.expand(n), bq.expand(n), generator=g)
    mc = (_laplace_log_density(x, mq, bq) - _laplace_log_density(x, mp, bp)).mean()
    closed = laplace_kl(mq, bq, mp, bp)
    assert closed >= 0
    assert abs(float(closed) - float(mc)) < 0.01 + 0.01 * float(closed)


def test_laplace_sample_has_laplace_moments():
    n = 200_000
    x = laplace_sample(torch.full((n,), 0.5), torch.full((n,), 0.2), generator=torch.Generator().manual_seed(3))
    assert abs(float(x.median()) - 0.5) < 0.01
    assert abs(float((x - 0.5).abs().mean()) - 0.2) < 0.01  # E|x - mu| = b
    assert torch.isfinite(x).all()


def test_soft_threshold_forward_zeros_and_straight_through_gradient():
    mu = torch.zeros(1000, requires_grad=True)
    scale = torch.full((1000,), 1.0, requires_grad=True)
    g = torch.Generator().manual_seed(0)
    c = laplace_sample(mu, scale, threshold=0.5, generator=g)
    # forward: |eps| <= lambda gives exactly 0 (mu = 0 here), otherwise shrunk by lambda
    g2 = torch.Generator().manual_seed(0)
    raw = laplace_sample(mu.detach(), scale.detach(), generator=g2)
    small = raw.abs() <= 0.5
    assert small.any() and (~small).any()
    assert (c[small] == 0).all()
    torch.testing.assert_close(c[~small].detach(), raw[~small] - 0.5 * torch.sign(raw[~small]))
    # backward: straight-through, identical to the gradient of the un-thresholded sample
    c.sum().backward()
    assert torch.equal(mu.grad, torch.ones(1000))
    eps_over_b = raw  # mu = 0, b = 1: d(mu + eps)/db = eps / b
    torch.testing.assert_close(scale.grad, eps_over_b)


def test_soft_threshold_where_shrunk_value_is_zero():
    mu = torch.tensor([0.2, -0.3, 0.0])
    eps = torch.tensor([0.7, 0.1, -2.0])
    out = soft_threshold(mu, eps, 0.5)
    torch.testing.assert_close(out, torch.tensor([0.4, 0.0, -1.5]))
    assert out[1].item() == 0.0  # |eps| <= lambda: the coefficient is exactly zero, not mu


def test_exponential_warmup():
    assert exponential_warmup(0, 100) == pytest.approx(5e-3)
    assert exponential_warmup(50, 100) == pytest.approx(math.sqrt(5e-3))
    assert exponential_warmup(100, 100) == 1.0 and exponential_warmup(5, 0) == 1.0


def test_prior_warmup_starts_at_fixed_prior_and_losses_are_finite():
    lie = VariationalLieOperators(16, num_operators=4, block_size=8, prior_warmup=100,
                                  generator=torch.Generator().manual_seed(0))
    z0, z1 = torch.randn(32, 16), torch.randn(32, 16)
    mu, b = lie.prior_params(z0, step=0)
    torch.testing.assert_close(mu, torch.zeros_like(mu))
    torch.testing.assert_close(b, torch.full_like(b, 0.01))
    mu_full, b_full = lie.prior_params(z0)
    mu_half, _ = lie.prior_params(z0, step=50)
    torch.testing.assert_close(mu_half, 0.5 * mu_full)
    terms = lie.losses(z0, z1, step=10)
    for k in ("transport", "kl", "shift"):
        assert torch.isfinite(terms[k])
    (terms["transport"] + terms["kl"]).backward()
    assert lie.operators.psi.grad is not None and lie.posterior.net[0].weight.grad is not None
    assert lie.prior.net[0].weight.grad is not None
    ratio, c = lie.transport_ratio(z0, z1)
    assert ratio > 0 and c.shape == (32, 4)


def test_operator_gradient_is_clipped():
    ops = LieOperators(3, 8, 4, grad_clip=0.1, generator=torch.Generator().manual_seed(0))
    z = 100 * torch.randn(64, 8)
    ops(z, torch.randn(64, 3)).pow(2).sum().backward()
    assert float(ops.psi.grad.norm()) <= 0.1 + 1e-6
    free = LieOperators(3, 8, 4, generator=torch.Generator().manual_seed(0))
    free(z, torch.randn(64, 3)).pow(2).sum().backward()
    assert float(free.psi.grad.norm()) > 0.1


def test_transport_term_is_per_pair_squared_distance():
    """transport = mean_n ||T(c) z0 - z1||^2 summed over dims (the KL's reduction), not the per-dim mean."""
    lie = VariationalLieOperators(16, num_operators=2, block_size=8, generator=torch.Generator().manual_seed(0))
    z0, z1 = torch.randn(32, 16), torch.randn(32, 16)
    torch.manual_seed(3)
    terms = lie.losses(z0, z1, step=0)
    moved = lie.transport(z0, terms["c_q"].detach())
    torch.testing.assert_close(terms["transport"].detach(), (moved - z1).pow(2).sum(1).mean())


def test_short_fit_learns_operators_instead_of_collapsing():
    """Pairs generated by a hidden operator, z1 = expm(c A) z0 with c ~ Laplace(0, 0.3) depending on the pair:
    150 steps with the default learning rates (operators 1e-2, coefficients 1e-3) and KL weight 1e-3
    under the exponential warm-up must explain most of the pair distances (the collapse this guards against
    left the ratio at ~1)."""
    gen = torch.Generator().manual_seed(0)
    d = 8
    a = torch.randn(d, d, generator=gen)
    a = (a - a.T) / 2 + 0.1 * torch.eye(d)

    def pairs(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        z0 = torch.randn(n, d, generator=gen) + 1.0
        c = torch.distributions.Laplace(0.0, 0.3).sample((n,))
        return z0, (torch.linalg.matrix_exp(c[:, None, None] * a) @ z0[..., None])[..., 0]

    torch.manual_seed(0)
    lie = VariationalLieOperators(d, num_operators=2, block_size=d, prior_warmup=50, hidden_mult=4,
                                  generator=torch.Generator().manual_seed(1))
    opt = torch.optim.AdamW([{"params": [lie.operators.psi], "lr": 1e-2, "weight_decay": 1e-3},
                             {"params": list(lie.posterior.parameters()) + list(lie.prior.parameters()), "lr": 1e-3,
                              "weight_decay": 0.0}])
    with single_thread():  # tiny tensors: a thread pool only slows this down on a busy machine
        for step in range(150):
            z0, z1 = pairs(64)
            t = lie.losses(z0, z1, step)
            loss = t["transport"] + 1e-3 * exponential_warmup(step, 5000) * t["kl"]
            opt.zero_grad()
            loss.backward()
            opt.step()
    z0, z1 = pairs(512)
    ratio, _ = lie.transport_ratio(z0, z1)
    assert ratio < 0.5
