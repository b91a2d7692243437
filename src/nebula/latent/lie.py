"""Variational Lie group operators on a latent manifold (ManifoldCLR, docs/methods.md section 2.2).

A dictionary of M operators Psi (M, S, b, b), block-diagonal over S = D / b blocks of size b, moves a
feature z (N, D) along the manifold by

    z' = T(c) z,    T(c) = blockdiag_s expm(sum_m c_m Psi_{m,s}),

with one coefficient c_m per operator shared by all S blocks. T is always computed in float32 with
``torch.linalg.matrix_exp``. Coefficients are Laplace distributed:

* posterior q(c | z0, z1): an MLP on [z0; z1] (inputs detached) explains how one view's feature moves to
  the other's;
* prior p(c | z0): an MLP on z0 (input detached) samples plausible moves from a single point, the
  *feature augmentations*; it is warmed up from the fixed prior Laplace(0, s0) over ``prior_warmup`` steps.

Both give mu = clamp(., -5, 5) + mu0 and log b = clamp(., -100, 3) + log s0 (s0 = 0.01, mu0 = 0.05) and
are sampled by reparameterisation: u ~ U(-1/2, 1/2), eps = -b sign(u) log(1 - 2|u|), c = mu + eps, with an
optional soft threshold lambda (forward: mu + sign(eps) max(|eps| - lambda, 0) where the shrunk noise is
non-zero, else exactly 0; backward: straight-through, d c / d(mu, eps) = 1).

Loss terms (weights are the caller's): transport ||T(c) z0 - stopgrad(z1)||^2 with c ~ q (squared distance
summed over the operator dimensions, averaged over pairs: D x the reference's mse (docs/methods.md section 2.4), the same reduction as the
KL, which is summed over the M coefficients - with the per-dimension mean the KL outweighs the transport by a
factor D and the posterior collapses onto the prior, T(c) ~ identity), and the closed form KL(q || p)
between Laplaces.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def init_operators(num_operators: int, num_blocks: int, block_size: int, generator: torch.Generator | None = None,
                   real_scale: float = 1e-4, imag_scale: float = 6.0) -> torch.Tensor:
    """Stable initial dictionary (M, S, b, b): each b x b block is block-diagonal in 2 x 2 blocks
    [[r, -w], [w, r]] with r ~ U(-.5, .5) * real_scale and w ~ U(-.5, .5) * imag_scale (nearly pure
    rotations, so expm(c Psi) neither explodes nor collapses). An odd b leaves a zero last row/column."""
    if block_size < 2:
        raise ValueError(f"block_size must be >= 2, found {block_size}")
    half = block_size // 2
    shape = (num_operators, num_blocks, half)
    r = (torch.rand(shape, generator=generator) - 0.5) * real_scale
    w = (torch.rand(shape, generator=generator) - 0.5) * imag_scale
    psi = torch.zeros(num_operators, num_blocks, block_size, block_size)
    idx = torch.arange(half) * 2
    psi[:, :, idx, idx] = r
    psi[:, :, idx + 1, idx + 1] = r
    psi[:, :, idx, idx + 1] = -w
    psi[:, :, idx + 1, idx] = w
    return psi


def clip_gradient_norm_hook(max_norm: float):
    """A tensor hook that rescales a gradient to norm <= ``max_norm`` (per-parameter clipping that happens
    during backward, so no trainer support is needed)."""

    def hook(grad: torch.Tensor) -> torch.Tensor:
        norm = grad.norm()
        scale = torch.clamp(max_norm / (norm + 1e-12), max=1.0)
        return grad * scale

    return hook


class LieOperators(nn.Module):
    """The operator dictionary Psi (M, S, b, b) acting on the first ``S * b`` feature dimensions.

    Args:
        num_operators: M.
        dim: D, the number of feature dimensions the operators act on (the rest pass through unchanged;
            DirectCLR uses the first 64).
        block_size: b (D must be a multiple of b).
        grad_clip: gradient-norm clip for Psi applied in backward (0: none).
        generator: seeds the initialisation.
    """

    def __init__(self, num_operators: int, dim: int, block_size: int, grad_clip: float = 0.0,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if dim % block_size != 0:
            raise ValueError(f"operator dimension {dim} is not a multiple of the block size {block_size}")
        self.num_operators, self.dim, self.block_size = num_operators, dim, block_size
        self.num_blocks = dim // block_size
        self.psi = nn.Parameter(init_operators(num_operators, self.num_blocks, block_size, generator))
        if grad_clip > 0:
            self.psi.register_hook(clip_gradient_norm_hook(grad_clip))

    def generator_matrix(self, c: torch.Tensor, psi: torch.Tensor | None = None) -> torch.Tensor:
        """c: (N, M) -> A = sum_m c_m Psi_m: (N, S, b, b)."""
        psi = self.psi if psi is None else psi
        return torch.einsum("nm,msij->nsij", c.float(), psi.float())

    def transform(self, c: torch.Tensor, psi: torch.Tensor | None = None) -> torch.Tensor:
        """T(c) blocks: (N, S, b, b) = expm(A) in float32."""
        return torch.linalg.matrix_exp(self.generator_matrix(c, psi))

    def forward(self, z: torch.Tensor, c: torch.Tensor, detach_operators: bool = False) -> torch.Tensor:
        """z: (N, D_total), c: (N, M) -> T(c) z: (N, D_total); dims beyond ``dim`` pass through."""
        psi = self.psi.detach() if detach_operators else self.psi
        t = self.transform(c, psi)
        head = z[:, : self.dim].float().reshape(len(z), self.num_blocks, self.block_size, 1)
        moved = (t @ head).reshape(len(z), self.dim).to(z.dtype)
        if z.shape[1] == self.dim:
            return moved
        return torch.cat([moved, z[:, self.dim :]], dim=1)

    @torch.no_grad()
    def orbit(self, z: torch.Tensor, operator: int, t: torch.Tensor) -> torch.Tensor:
        """z: (D_total,), t: (K,) -> expm(t_k Psi_m) z for one operator m: (K, D_total)."""
        c = torch.zeros(len(t), self.num_operators, device=z.device)
        c[:, operator] = t.to(z.device)
        return self(z.unsqueeze(0).expand(len(t), -1), c)


# ---------------------------------------------------------------------------- Laplace coefficients
def laplace_sample(mu: torch.Tensor, scale: torch.Tensor, threshold: float = 0.0,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Reparameterised Laplace sample c = mu + eps, eps = -b sign(u) log(1 - 2|u|), u ~ U(-1/2, 1/2).

    With ``threshold`` lambda > 0 the forward value is soft-thresholded, s = mu + sign(eps) max(|eps| - lambda, 0)
    where |eps| > lambda and exactly 0 elsewhere, and the backward pass is straight-through (the gradient of
    mu + eps).
    mu, scale: (N, M) -> (N, M).
    """
    u = torch.rand(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype) - 0.5
    # keep |u| < 1/2 so log(1 - 2|u|) is finite
    u = u.clamp(-0.5 + 1e-7, 0.5 - 1e-7)
    eps = -scale * torch.sign(u) * torch.log1p(-2.0 * u.abs())
    c = mu + eps
    if threshold > 0:
        return c + (soft_threshold(mu, eps, threshold) - c).detach()
    return c


def soft_threshold(mu: torch.Tensor, eps: torch.Tensor, threshold: float) -> torch.Tensor:
    """Forward value of the thresholded sample: mu + sign(eps) max(|eps| - lambda, 0) where the shrunk noise
    max(|eps| - lambda, 0) is non-zero, else exactly 0 (a sparse coefficient)."""
    shrunk = torch.clamp(eps.abs() - threshold, min=0.0)
    return torch.where(shrunk > 0, mu + torch.sign(eps) * shrunk, torch.zeros_like(mu))


def laplace_kl(mu_q: torch.Tensor, scale_q: torch.Tensor, mu_p: torch.Tensor, scale_p: torch.Tensor) -> torch.Tensor:
    """KL(Laplace(mu_q, b_q) || Laplace(mu_p, b_p)) elementwise:

    |mu_q - mu_p| / b_p + log b_p - log b_q - 1 + (b_q / b_p) exp(-|mu_q - mu_p| / b_q).
    """
    d = (mu_q - mu_p).abs()
    return d / scale_p + torch.log(scale_p) - torch.log(scale_q) - 1.0 + (scale_q / scale_p) * torch.exp(-d / scale_q)


class LaplaceCoefficients(nn.Module):
    """MLP in_features -> hidden -> hidden -> 2M giving Laplace(mu, b) over the M coefficients.

    mu = clamp(raw_mu, -5, 5) + mu0 and log b = clamp(raw_log_b, -100, 3) + log s0; the input is detached
    (the coefficient networks never shape the backbone). x: (N, in_features) -> mu, b: (N, M).
    """

    def __init__(self, in_features: int, num_operators: int, hidden: int, scale_prior: float = 0.01,
                 mu_prior: float = 0.05) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden), nn.LeakyReLU(0.2),
            nn.Linear(hidden, hidden), nn.LeakyReLU(0.2),
            nn.Linear(hidden, 2 * num_operators),
        )
        self.log_s0, self.mu0 = math.log(scale_prior), mu_prior

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raw_mu, raw_log_b = self.net(x.detach().float()).chunk(2, dim=1)
        mu = raw_mu.clamp(-5.0, 5.0) + self.mu0
        log_b = raw_log_b.clamp(-100.0, 3.0) + self.log_s0
        return mu, torch.exp(log_b)


def exponential_warmup(step: int, warmup_steps: int, start: float = 5e-3) -> float:
    """Factor growing exponentially from ``start`` to 1 over ``warmup_steps`` (1 afterwards or when 0)."""
    if warmup_steps <= 0 or step >= warmup_steps:
        return 1.0
    return float(start ** (1.0 - step / warmup_steps))


class VariationalLieOperators(nn.Module):
    """Operators + posterior q(c|z0,z1) + learned prior p(c|z0) + loss terms.

    Args:
        dim: total feature dimension D_total.
        num_operators: M.
        block_size: b.
        operator_dim: dimensions the operators act on (0: all of D_total; DirectCLR: 64).
        hidden_mult: MLP hidden width = hidden_mult * operator_dim.
        scale_prior, mu_prior: s0 and mu0 of the Laplace parameterisation.
        threshold: soft threshold lambda (0: none).
        prior_warmup: steps to interpolate the prior from Laplace(0, s0) to p(c|z0).
        grad_clip: gradient-norm clip of Psi.
    """

    def __init__(self, dim: int, num_operators: int = 8, block_size: int = 16, operator_dim: int = 0,
                 hidden_mult: int = 4, scale_prior: float = 0.01, mu_prior: float = 0.05, threshold: float = 0.0,
                 prior_warmup: int = 5000, grad_clip: float = 0.1, generator: torch.Generator | None = None) -> None:
        super().__init__()
        op_dim = operator_dim or dim
        if op_dim > dim:
            raise ValueError(f"operator_dim {op_dim} exceeds the feature dimension {dim}")
        self.operators = LieOperators(num_operators, op_dim, block_size, grad_clip, generator)
        self.op_dim, self.num_operators = op_dim, num_operators
        self.posterior = LaplaceCoefficients(2 * op_dim, num_operators, hidden_mult * op_dim, scale_prior, mu_prior)
        self.prior = LaplaceCoefficients(op_dim, num_operators, hidden_mult * op_dim, scale_prior, mu_prior)
        self.scale_prior, self.threshold, self.prior_warmup = scale_prior, threshold, prior_warmup

    def posterior_params(self, z0: torch.Tensor, z1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(c | z0, z1): mu, b (N, M)."""
        return self.posterior(torch.cat([z0[:, : self.op_dim], z1[:, : self.op_dim]], dim=1))

    def prior_params(self, z0: torch.Tensor, step: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """p(c | z0): mu, b (N, M); during warm-up alpha = step / prior_warmup interpolates
        mu = alpha mu_net and log b = alpha log b_net + (1 - alpha) log s0 from the fixed prior."""
        mu, scale = self.prior(z0[:, : self.op_dim])
        if step is None or self.prior_warmup <= 0 or step >= self.prior_warmup:
            return mu, scale
        alpha = step / self.prior_warmup
        log_b = alpha * torch.log(scale) + (1.0 - alpha) * math.log(self.scale_prior)
        return alpha * mu, torch.exp(log_b)

    def sample(self, mu: torch.Tensor, scale: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return laplace_sample(mu, scale, self.threshold, generator)

    def transport(self, z0: torch.Tensor, c: torch.Tensor, detach_operators: bool = False) -> torch.Tensor:
        """T(c) z0: (N, D_total)."""
        return self.operators(z0, c, detach_operators)

    @torch.no_grad()
    def augment(self, z0: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Feature augmentation T(c) z0 with c ~ p(c | z0) (no gradient; warm-up finished)."""
        mu, scale = self.prior_params(z0)
        return self.transport(z0, self.sample(mu, scale, generator))

    def losses(self, z0: torch.Tensor, z1: torch.Tensor, step: int, detach_z0: bool = True) -> dict[str, torch.Tensor]:
        """Transport and KL terms for a pair of views z0, z1 (N, D_total).

        Returns ``transport`` = mean_n ||T(c) z0 - stopgrad(z1)||^2 with c ~ q (summed over the operator
        dimensions, averaged over pairs),
        ``kl`` = sum_m KL(q || p) averaged over samples, and ``shift`` = mean_n ||mu_q||^2, plus the
        tensors ``c_q`` (N, M) and ``mu_q`` for diagnostics.
        """
        mu_q, b_q = self.posterior_params(z0, z1)
        mu_p, b_p = self.prior_params(z0, step)
        c = self.sample(mu_q, b_q)
        source = z0.detach() if detach_z0 else z0
        moved = self.transport(source, c)
        target = z1.detach()
        transport = (moved[:, : self.op_dim] - target[:, : self.op_dim]).pow(2).sum(1).mean()
        kl = laplace_kl(mu_q, b_q, mu_p, b_p).sum(1).mean()
        shift = mu_q.pow(2).sum(1).mean()
        return {"transport": transport, "kl": kl, "shift": shift, "c_q": c, "mu_q": mu_q}

    @torch.no_grad()
    def transport_ratio(self, z0: torch.Tensor, z1: torch.Tensor, use_mean: bool = True) -> tuple[float, torch.Tensor]:
        """sum ||z1 - T(c) z0||^2 / sum ||z1 - z0||^2 over pairs (operator dims), c = E_q[c] (or a sample);
        returns the ratio and the coefficients (N, M)."""
        mu_q, b_q = self.posterior_params(z0, z1)
        c = mu_q if use_mean else self.sample(mu_q, b_q)
        moved = self.transport(z0, c)[:, : self.op_dim]
        num = (z1[:, : self.op_dim] - moved).pow(2).sum()
        den = (z1[:, : self.op_dim] - z0[:, : self.op_dim]).pow(2).sum().clamp_min(1e-12)
        return float(num / den), c
