"""Partition targets for the anchor terms: the placement's partition, refined from a map of the latents.

N2D (McConaughy & Malik 2019) clusters a manifold map of an autoencoder's latents instead of the latents
themselves. Here the same idea keeps the anchors on a partition of the training set:

* at placement, every training sample of the t-SNE map gets its part k in [0, m) as a target (the anchor
  terms then pull it to anchor k, not to whichever anchor is nearest in a latent the warm-up barely shaped);
* at each refinement epoch the training latents mu are mapped by t-SNE, partitioned by k-means, and the
  parts renumbered to agree best with the current targets (Hungarian matching on the m x m overlap), the
  anchors moved to the part means: the partition follows what the latent has learned.

Pure functions of arrays; the model keeps the (n_train,) targets (-1 where a sample has none).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment


def align_parts(new: np.ndarray, old: np.ndarray, m: int) -> np.ndarray:
    """``new`` (N,) part ids in [0, m) renumbered to agree best with ``old`` (N,) (entries < 0 ignored)."""
    known = old >= 0
    overlap = np.zeros((m, m), dtype=np.int64)
    np.add.at(overlap, (new[known], old[known]), 1)
    rows, cols = linear_sum_assignment(-overlap)
    mapping = np.arange(m)
    mapping[rows] = cols
    return mapping[new]


def part_means(mu: torch.Tensor, part: torch.Tensor, m: int, fallback: torch.Tensor) -> torch.Tensor:
    """(m, d) mean of mu: (N, d) over each part (N,) in [0, m); ``fallback`` (m, d) rows for empty parts."""
    sums = torch.zeros(m, mu.shape[1], dtype=mu.dtype).index_add_(0, part, mu)
    counts = torch.bincount(part, minlength=m).to(mu.dtype)
    means = sums / counts.clamp_min(1).unsqueeze(1)
    return torch.where((counts > 0).unsqueeze(1), means, fallback.to(mu.dtype))


def refine_epochs(start: int, epochs: int, count: int) -> list[int]:
    """``count`` refinement epochs spread evenly over (start, epochs): e.g. start 10, 100 epochs, 2 -> [40, 70]."""
    if count <= 0 or epochs - start < 2:
        return []
    step = (epochs - start) / (count + 1)
    return sorted({min(epochs - 1, max(start + 1, int(round(start + step * (i + 1))))) for i in range(count)})
