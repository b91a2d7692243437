"""Chamfer distance between point clouds: batched, memory-chunked, pure torch.

Form used everywhere in nebula (the squared-L2 Chamfer distance):

    CD_sum(X, Y)  = sum_i min_j ||x_i - y_j||^2 + sum_j min_i ||y_j - x_i||^2     (the loss, per sample)
    CD_mean(X, Y) = mean_i min_j ||x_i - y_j||^2 + mean_j min_i ||y_j - x_i||^2   (the reported metric)

for X: (N, P, 3), Y: (N, Q, 3). Nearest neighbours are found without gradient on (N, chunk, Q) blocks of
squared distances ||x||^2 + ||y||^2 - 2 x.y (never more than ``max_elements`` floats at once); the
differentiable distances are then recomputed on the matched pairs only, so backward needs O(N (P + Q))
memory. The gradient equals that of the dense min (the min's subgradient picks the same neighbour).
"""

from __future__ import annotations

import torch

from nebula.losses.reconstruction import register_reconstruction

MAX_ELEMENTS = 1 << 24


@torch.no_grad()
def nearest_neighbours(x: torch.Tensor, y: torch.Tensor, max_elements: int = MAX_ELEMENTS) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest-neighbour indices both ways for x: (N, P, D), y: (N, Q, D).

    Returns (N, P) int64 index into y of each x_i's nearest point and (N, Q) index into x of each
    y_j's. One (b, P, Q) block of squared distances ||x||^2 + ||y||^2 - 2 x.y serves both directions;
    b clouds at a time with b P Q <= max_elements (at least one cloud).
    """
    n, p, _ = x.shape
    q = y.shape[1]
    x2, y2 = x.pow(2).sum(2), y.pow(2).sum(2)
    to_y = torch.empty(n, p, dtype=torch.long, device=x.device)
    to_x = torch.empty(n, q, dtype=torch.long, device=x.device)
    step = max(1, max_elements // max(1, p * q))
    for s in range(0, n, step):
        d = torch.baddbmm(y2[s : s + step].unsqueeze(1), x[s : s + step], y[s : s + step].transpose(1, 2), alpha=-2.0)
        d.add_(x2[s : s + step].unsqueeze(2))
        to_y[s : s + step] = d.argmin(2)
        to_x[s : s + step] = d.argmin(1)
    return to_y, to_x


def _gather(points: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return points.gather(1, index.unsqueeze(2).expand(-1, -1, points.shape[2]))


def nearest_squared_distances(x: torch.Tensor, y: torch.Tensor, max_elements: int = MAX_ELEMENTS) -> tuple[torch.Tensor, torch.Tensor]:
    """(min_j ||x_i - y_j||^2 for each i: (N, P), min_i ||y_j - x_i||^2 for each j: (N, Q)),
    differentiable w.r.t. x and y (the distances are recomputed on the matched pairs)."""
    to_y, to_x = nearest_neighbours(x.detach(), y.detach(), max_elements)
    return (x - _gather(y, to_y)).pow(2).sum(2), (y - _gather(x, to_x)).pow(2).sum(2)


def chamfer_distance(x: torch.Tensor, y: torch.Tensor, reduction: str = "mean",
                     max_elements: int = MAX_ELEMENTS) -> torch.Tensor:
    """Squared-L2 Chamfer distance per sample, (N,): ``reduction`` ``mean`` (CD_mean) or ``sum`` (CD_sum).

    x: (N, P, D), y: (N, Q, D).
    """
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be mean or sum, found {reduction!r}")
    a, b = nearest_squared_distances(x, y, max_elements)
    if reduction == "sum":
        return a.sum(1) + b.sum(1)
    return a.mean(1) + b.mean(1)


@register_reconstruction("chamfer")
def chamfer_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Reconstruction loss for point clouds: CD_sum (squared L2, summed over both directions), (N,).

    Summed like the other reconstruction losses (a per-sample sum over elements); for unit-sphere
    clouds of 1,024 points a good reconstruction costs a few units, so the KL weight ``loss.beta`` of
    variational variants must be small (see docs/3d.md).
    """
    return chamfer_distance(output, target, reduction="sum")
