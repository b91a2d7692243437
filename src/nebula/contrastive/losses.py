"""NT-Xent (normalised temperature-scaled cross entropy, SimCLR) with cosine or MSE similarity.

For anchors a (N, d) and positives p (N, d) the 2N points u = [a; p] are compared pairwise,
s_ij = sim(u_i, u_j) / T. Each u_i has one positive (its partner, i +- N) and the other 2N - 2 points
(plus K optional extra negatives e (K, d), compared with every u_i) as negatives:

    L = mean_i [ -s_{i,pos(i)} + log sum_{j != i} exp(s_ij) + log-sum over extras ].

Similarities: ``cosine`` (u_i . u_j / |u_i||u_j|) or ``mse`` (-mean_k (u_ik - u_jk)^2, for head-less
ManifoldCLR). Everything is N x N (or N x K) matrices; no loops.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pairwise_similarity(x: torch.Tensor, y: torch.Tensor, kind: str = "cosine") -> torch.Tensor:
    """x (N, d), y (K, d) -> (N, K) similarities."""
    if kind == "cosine":
        return F.normalize(x, dim=1) @ F.normalize(y, dim=1).T
    if kind == "mse":
        sq = x.pow(2).sum(1, keepdim=True) + y.pow(2).sum(1).unsqueeze(0) - 2.0 * x @ y.T
        return -sq.clamp_min(0.0) / x.shape[1]
    raise ValueError(f"unknown similarity '{kind}' (expected cosine or mse)")


def nt_xent(anchors: torch.Tensor, positives: torch.Tensor, temperature: float = 0.5, similarity: str = "cosine",
            extra_negatives: torch.Tensor | None = None) -> torch.Tensor:
    """NT-Xent loss (scalar) of anchors (N, d) against positives (N, d); ``extra_negatives`` (K, d) are
    added to every point's denominator."""
    n = len(anchors)
    u = torch.cat([anchors, positives], dim=0)
    logits = pairwise_similarity(u, u, similarity) / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=u.device), float("-inf"))
    if extra_negatives is not None and len(extra_negatives):
        logits = torch.cat([logits, pairwise_similarity(u, extra_negatives, similarity) / temperature], dim=1)
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(u.device)
    return F.cross_entropy(logits, target)
