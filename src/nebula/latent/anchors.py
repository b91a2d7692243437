"""Nebula anchors: m learnable points in latent space that latents cluster around.

Notation (docs/methods.md section 1.1): z: (N, d) latents, A: (m, d) anchors, D_ik = ||z_i - a_k||^2 (N, m),
c_i = argmin_k D_ik (hard assignment, no gradient).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def squared_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """||x_i - y_j||^2 for x: (N, d), y: (M, d) -> (N, M), clamped at 0 (N x M memory only)."""
    norms = x.square().sum(1, keepdim=True) + y.square().sum(1)
    return torch.addmm(norms, x, y.T, alpha=-2.0).clamp_min(0.0)



def balanced_assignment(dist: torch.Tensor, epsilon: float = 0.05, iterations: int = 100) -> torch.Tensor:
    """Equipartitioned hard labels c: (N,) int64 from distances dist: (N, m) (no gradient).

    Sinkhorn-Knopp on Q_ik proportional to exp(-D_ik / (epsilon * mean(D))): alternately rescale Q so
    that every anchor column sums to 1/m and every sample row to 1/N (``iterations`` rounds, log
    domain), then c_i = argmax_k Q_ik. With ``epsilon`` -> 0 and balanced nearest assignments this is
    the nearest anchor; otherwise it moves samples from crowded anchors to their next-nearest
    under-used ones, so a class is not split over two anchors while two others share one
    (the equipartition constraint of SeLa / SwAV). N x m memory.
    """
    n, m = dist.shape
    if n == 0 or m < 2:
        return dist.argmin(1) if n else torch.zeros(0, dtype=torch.long, device=dist.device)
    with torch.no_grad():
        d = dist.detach().double()
        log_q = -d / (epsilon * d.mean().clamp_min(1e-12))
        for _ in range(iterations):
            log_q = log_q - torch.logsumexp(log_q, dim=0, keepdim=True) - math.log(m)
            log_q = log_q - torch.logsumexp(log_q, dim=1, keepdim=True) - math.log(n)
        return log_q.argmax(1)


def anchor_repulsion(anchors: torch.Tensor, distance: float, eps: float = 1e-6) -> torch.Tensor:
    """Pairwise repulsion r_kl = log(r^2 + eps) - log(min(||a_k - a_l||^2, r^2) + eps) >= 0, (m, m).

    This is the paper's -log(||a_k - a_l||^2 + eps) shifted and clamped at the target distance r:
    it is 0 once two anchors are r apart, and never negative, so the mass factors that multiply it in
    :func:`nebula_gravitation_loss` always pull latents toward their anchors (with the raw -log form a
    negative repulsion beyond distance 1 would push them away). Diagonal entries are 0.
    """
    d2 = squared_distances(anchors, anchors)
    r2 = float(distance) ** 2
    rep = torch.log(torch.tensor(r2 + eps, dtype=anchors.dtype, device=anchors.device)) - torch.log(d2.clamp_max(r2) + eps)
    return rep * (1.0 - torch.eye(len(anchors), dtype=anchors.dtype, device=anchors.device))


def nebula_gravitation_loss(dist: torch.Tensor, assign: torch.Tensor, anchors: torch.Tensor,
                            distance: float = 4.0, detach_mass: bool = False) -> torch.Tensor:
    """Nebula (gravitation) term of the paper, batch-size normalised.

    M_k = 1 + (1/N) sum_{i: c_i = k} D_ik;  L_neb = (1 / #pairs) sum_{k<l} M_k M_l r_kl
    with r_kl from :func:`anchor_repulsion` (clamped, non-negative). ``detach_mass`` stops the
    gradient through the masses (then only anchors move apart).

    dist: (N, m), assign: (N,) int64, anchors: (m, d). Returns a scalar.
    """
    n, m = dist.shape
    if m < 2:
        return dist.new_zeros(())
    owned = torch.zeros_like(dist).scatter_(1, assign.view(-1, 1), 1.0)
    mass = 1.0 + (dist * owned).sum(0) / n
    if detach_mass:
        mass = mass.detach()
    rep = anchor_repulsion(anchors, distance)
    pair = torch.triu(torch.ones(m, m, dtype=torch.bool, device=dist.device), diagonal=1)
    return (mass.unsqueeze(1) * mass.unsqueeze(0) * rep)[pair].mean()


class NebulaAnchors(nn.Module):
    """The (m, d) anchor parameter plus dead-anchor bookkeeping.

    Dead anchors (the reference's bug R2: anchors that are never nearest get no gradient) are
    re-seeded when ``reseed_dead``: an anchor that owned no latent for ``dead_after`` consecutive steps
    splits the most crowded anchor's part of the current batch: it moves to the midpoint of that anchor
    and its member farthest from it (each further dead anchor takes the next most crowded part). The
    farthest latent of the whole batch, the older rule, is usually an outlier that owns nothing either.
    The owner (the model) may set ``dead_after`` from the number of steps an epoch.
    """

    def __init__(self, num_anchors: int, latent_dim: int, reseed_dead: bool = True, dead_after: int = 20) -> None:
        super().__init__()
        self.anchors = nn.Parameter(torch.randn(num_anchors, latent_dim))
        self.reseed_dead = reseed_dead
        self.dead_after = dead_after
        self.register_buffer("idle_steps", torch.zeros(num_anchors, dtype=torch.long))
        self.register_buffer("reseeded", torch.zeros((), dtype=torch.long))

    @property
    def num_anchors(self) -> int:
        return int(self.anchors.shape[0])

    def distances(self, z: torch.Tensor) -> torch.Tensor:
        """D: (N, m) squared distances of z: (N, d) to every anchor."""
        return squared_distances(z, self.anchors)

    def pull(self, z: torch.Tensor, assign: torch.Tensor) -> torch.Tensor:
        """mean_i ||z_i - a_{assign_i}||^2 for z: (N, d), assign: (N,): the anchor pull D_{i, c_i} from the
        differences (N x d work; the gradient reaches z and the assigned anchors)."""
        return (z - self.anchors[assign]).square().sum(1).mean()


    def soft_assign(self, dist: torch.Tensor, tau: float) -> torch.Tensor:
        """softmax(-D / tau): (N, m), the nearest anchor gets the largest weight (fixes bug R7)."""
        return torch.softmax(-dist / tau, dim=1)

    @torch.no_grad()
    def set_anchors(self, values: torch.Tensor) -> None:
        self.anchors.copy_(values.to(self.anchors))
        self.idle_steps.zero_()

    @torch.no_grad()
    def update_usage(self, z: torch.Tensor, dist: torch.Tensor | None = None, assign: torch.Tensor | None = None) -> int:
        """Count idle steps per anchor from a batch and re-seed dead anchors; returns how many moved.

        z: (N, d); dist: (N, m) its anchor distances and assign: (N,) its nearest anchors, computed when not given.
        """
        dist = self.distances(z) if dist is None else dist
        assign = dist.argmin(1) if assign is None else assign
        idle = self.idle_steps.add_(1).index_fill_(0, assign, 0)  # 0 for every anchor that owns a latent
        if not self.reseed_dead or int(idle.max()) < self.dead_after:
            return 0
        dead = torch.nonzero(idle >= self.dead_after).flatten()[: len(z)]
        error = dist.gather(1, assign.view(-1, 1)).squeeze(1)  # each latent's distance to its own anchor
        counts = torch.bincount(assign, minlength=self.num_anchors).float()
        z = z.detach().to(self.anchors)
        moved = 0
        for k in dead.tolist():  # at most m iterations, no per-sample work
            crowded = int(counts.argmax())
            members = assign == crowded
            if int(members.sum()) < 2:
                break
            far = int(torch.where(members, error, torch.full_like(error, -1.0)).argmax())
            self.anchors[k] = 0.5 * (self.anchors[crowded] + z[far])
            counts[crowded] = counts[crowded] / 2
            counts[k] = counts[crowded]
            self.idle_steps[k] = 0
            moved += 1
        self.reseeded.add_(moved)
        return moved
