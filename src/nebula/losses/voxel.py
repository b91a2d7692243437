"""Voxel reconstruction losses: binary cross-entropy over occupancy grids, plain or class-balanced.

``voxel_bce``:          L = sum_v BCE(l_v, t_v)                                 (logits l, targets t in {0, 1})
``voxel_bce_balanced``: L = sum_v w_v BCE(l_v, t_v),  w_v = V / (2 V_1) for occupied voxels and
                        V / (2 V_0) for empty ones (V_1 / V_0 occupied / empty voxels of the sample, V all),
so both classes carry half of the total weight V whatever the occupancy (grids are mostly empty: a
32^3 ModelNet10 shell is ~10 % occupied). Both are per-sample sums, (N,), decoded with a sigmoid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nebula.losses.reconstruction import register_reconstruction


@register_reconstruction("voxel_bce", to_data=torch.sigmoid)
def voxel_bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Plain BCE with logits summed over the grid: (N, 1, R, R, R) -> (N,)."""
    return F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(1).sum(1)


@register_reconstruction("voxel_bce_balanced", to_data=torch.sigmoid)
def voxel_bce_balanced(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Class-balanced BCE summed over the grid (module docstring): (N, ...) -> (N,)."""
    t = target.flatten(1)
    total = t.shape[1]
    pos = t.sum(1, keepdim=True).clamp_min(1.0)
    neg = (total - t.sum(1, keepdim=True)).clamp_min(1.0)
    weight = torch.where(t > 0.5, total / (2.0 * pos), total / (2.0 * neg))
    bce = F.binary_cross_entropy_with_logits(logits.flatten(1), t, reduction="none")
    return (weight * bce).sum(1)
