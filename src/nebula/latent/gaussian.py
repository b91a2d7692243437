"""Latent heads: deterministic (AE) and diagonal Gaussian (VAE), and the KL term.

GaussianHead: mu = W_mu h, log_sigma = W_s h; z = mu + sigma * eps while training and
z = mu at evaluation (fixes the reference's bug R1, which sampled at evaluation too).
"""

from __future__ import annotations

import torch
from torch import nn


class DeterministicHead(nn.Module):
    """h: (N, F) -> z = mu: (N, d); log_sigma is None."""

    def __init__(self, in_features: int, latent_dim: int) -> None:
        super().__init__()
        self.mu = nn.Linear(in_features, latent_dim)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        mu = self.mu(h)
        return mu, mu, None


class GaussianHead(nn.Module):
    """h: (N, F) -> (z, mu, log_sigma), each (N, d); log_sigma clamped to [-10, 5] for stability."""

    def __init__(self, in_features: int, latent_dim: int) -> None:
        super().__init__()
        self.mu = nn.Linear(in_features, latent_dim)
        self.log_sigma = nn.Linear(in_features, latent_dim)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu = self.mu(h)
        log_sigma = self.log_sigma(h).clamp(-10.0, 5.0)
        if self.training:
            z = torch.addcmul(mu, torch.exp(log_sigma), torch.randn_like(mu))  # mu + sigma * eps
        else:
            z = mu
        return z, mu, log_sigma


def kl_standard_normal(mu: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) per sample and dimension, (N, d).

    KL_d = -0.5 * (1 + 2 log_sigma_d - mu_d^2 - sigma_d^2); the per-sample KL is the sum over d.
    """
    return -0.5 * (1.0 + 2.0 * log_sigma - mu.pow(2) - torch.exp(2.0 * log_sigma))


class _MeanStandardNormalKL(torch.autograd.Function):
    """mean_i sum_d KL_id for mu, log_sigma: (N, d), with its gradient written out:
    d/dmu = mu / N, d/dlog_sigma = (sigma^2 - 1) / N (a few in-place passes, no autograd graph)."""

    @staticmethod
    def forward(ctx, mu: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:  # noqa: D102
        var = log_sigma.mul(2.0).exp_()
        value = (var.add(log_sigma, alpha=-2.0).addcmul_(mu, mu).sum() - var.numel()) * (0.5 / max(len(mu), 1))
        ctx.save_for_backward(mu, var)
        return value

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: D102
        mu, var = ctx.saved_tensors
        scale = grad / max(len(mu), 1)
        return mu * scale, (var - 1.0).mul_(scale)


def mean_kl_standard_normal(mu: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """Scalar mean over samples of KL(N(mu, sigma^2) || N(0, I)) summed over dimensions; mu, log_sigma: (N, d).

    Equal to ``kl_standard_normal(mu, log_sigma).sum(1).mean()`` with a fraction of its operations
    (the training step's KL term when no free bits are asked for).
    """
    return _MeanStandardNormalKL.apply(mu, log_sigma)


def free_bits_kl(kl_per_dim: torch.Tensor, free_bits: float) -> torch.Tensor:
    """Per-sample KL (N,) where each dimension whose batch-mean KL is below ``free_bits`` nats costs a
    constant (no gradient): max(KL_d, lambda) of Kingma et al. (2016), against posterior collapse."""
    if free_bits <= 0:
        return kl_per_dim.sum(1)
    below = kl_per_dim.mean(0, keepdim=True) < free_bits
    return torch.where(below, torch.full_like(kl_per_dim, free_bits), kl_per_dim).sum(1)


def warmup_weight(step: int, warmup_steps: int) -> float:
    """Linear warm-up factor in [0, 1]: step / warmup_steps (1 when warmup_steps <= 0)."""
    if warmup_steps <= 0:
        return 1.0
    return min(1.0, (step + 1) / warmup_steps)
