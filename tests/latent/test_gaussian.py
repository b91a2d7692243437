from __future__ import annotations

import torch

from nebula.latent.gaussian import (
    GaussianHead,
    free_bits_kl,
    kl_standard_normal,
    mean_kl_standard_normal,
    warmup_weight,
)


def test_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu, log_sigma = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g) * 0.3
    q = torch.distributions.Normal(mu, log_sigma.exp())
    p = torch.distributions.Normal(torch.zeros(3), torch.ones(3))
    torch.testing.assert_close(kl_standard_normal(mu, log_sigma), torch.distributions.kl_divergence(q, p))


def test_free_bits_floor():
    kl = torch.tensor([[0.1, 2.0], [0.3, 4.0]])
    torch.testing.assert_close(free_bits_kl(kl, 0.5), torch.tensor([2.5, 4.5]))
    torch.testing.assert_close(free_bits_kl(kl, 0.0), kl.sum(1))


def test_head_samples_in_training_and_returns_mean_in_eval():
    head = GaussianHead(4, 2)
    h = torch.randn(8, 4)
    z1, mu, _ = head(h)
    assert not torch.equal(z1, mu)
    head.eval()
    z2, mu2, _ = head(h)
    assert torch.equal(z2, mu2)


def test_warmup():
    assert warmup_weight(0, 0) == 1.0
    assert warmup_weight(4, 10) == 0.5 and warmup_weight(50, 10) == 1.0


def test_mean_kl_matches_the_per_dimension_form_and_its_gradient():
    g = torch.Generator().manual_seed(3)
    mu = torch.randn(7, 4, generator=g, dtype=torch.float64, requires_grad=True)
    log_sigma = (0.5 * torch.randn(7, 4, generator=g, dtype=torch.float64)).requires_grad_(True)
    fused = mean_kl_standard_normal(mu, log_sigma)
    plain = kl_standard_normal(mu, log_sigma).sum(1).mean()
    torch.testing.assert_close(fused, plain)
    torch.testing.assert_close(torch.autograd.grad(fused, (mu, log_sigma)), torch.autograd.grad(plain, (mu, log_sigma)))
    assert torch.autograd.gradcheck(mean_kl_standard_normal, (mu, log_sigma))
