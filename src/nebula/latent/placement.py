"""Anchor placement at the end of pre-training: where the m anchors start.

* ``kmeans``: k-means (scikit-learn, n_init = 10) on the training latents mu: (N, d).
* ``random``: m random training latents.
* ``tsne``: a partition of the training *inputs* by k-means on their 2-D t-SNE map (inputs flattened,
  reduced to 50 principal components when wider, at most ``TSNE_SAMPLES`` random samples); anchor k is
  the mean latent of part k. t-SNE keeps the local neighbourhoods of the input, which on small images
  separate classes better than the pre-trained latents do (docs/clustering.md), and the anchor terms keep
  a good starting partition: the placement decides which classes share an anchor.

Every function returns anchors (m, d) and the name of the method actually used.
"""

from __future__ import annotations

import numpy as np
import torch

from nebula.errors import ConfigError

#: at most this many training samples go into the t-SNE map
TSNE_SAMPLES = 5000
#: below this many samples t-SNE is not used (its neighbourhoods need data): k-means on the latents instead
TSNE_MIN_SAMPLES = 100
METHODS = ("kmeans", "random", "tsne")


def _seed(generator: torch.Generator) -> int:
    return int(torch.randint(0, 2**31 - 1, (1,), generator=generator))


def kmeans_anchors(mu: torch.Tensor, m: int, generator: torch.Generator) -> torch.Tensor:
    """(m, d) k-means centres of mu: (N, d), N >= m."""
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=m, n_init=10, random_state=_seed(generator)).fit(mu.double().cpu().numpy())
    return torch.from_numpy(km.cluster_centers_.astype(np.float32))


def random_anchors(mu: torch.Tensor, m: int, generator: torch.Generator) -> torch.Tensor:
    """(m, d) random rows of mu, padded with N(0, I) draws when N < m."""
    centres = mu[torch.randperm(len(mu), generator=generator)[:m]].float().cpu()
    if len(centres) < m:
        centres = torch.cat([centres, torch.randn(m - len(centres), mu.shape[1], generator=generator)])
    return centres


def tsne_partition(inputs: torch.Tensor, m: int, seed: int) -> np.ndarray:
    """(N,) part index in [0, m) of every input (N, ...) from k-means on its 2-D t-SNE map."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    x = inputs.reshape(len(inputs), -1).double().cpu().numpy()
    if x.shape[1] > 50:
        x = PCA(50, random_state=seed % (2**32 - 1)).fit_transform(x)
    perplexity = min(30.0, (len(x) - 1) / 3.0)
    emb = TSNE(2, init="pca", perplexity=perplexity, random_state=seed % (2**32 - 1)).fit_transform(x)
    return KMeans(n_clusters=m, n_init=10, random_state=seed).fit_predict(emb)


def place_anchors(method: str, mu: torch.Tensor, m: int, generator: torch.Generator,
                  inputs: torch.Tensor | None = None) -> tuple[torch.Tensor, str]:
    """Anchors (m, d) for the training latents mu: (N, d) (and inputs (N, ...) for ``tsne``)."""
    centres, how, _ = place_anchors_with_parts(method, mu, m, generator, inputs)
    return centres, how


def place_anchors_with_parts(method: str, mu: torch.Tensor, m: int, generator: torch.Generator,
                             inputs: torch.Tensor | None = None) -> tuple[torch.Tensor, str, torch.Tensor]:
    """:func:`place_anchors` plus the partition it used: (N,) int64 part of each latent, -1 for samples
    outside the t-SNE subset (k-means: its labels; random: the nearest anchor)."""
    if method not in METHODS:
        raise ConfigError(f"train.anchor_init must be one of {', '.join(METHODS)} or auto, found {method!r}")
    if method == "tsne":
        if inputs is not None and not inputs.is_floating_point():
            raise ConfigError("train.anchor_init=tsne needs real-valued inputs (images, voxels), found "
                              f"{inputs.dtype} (e.g. token ids): use kmeans")
        if inputs is not None and len(inputs) >= max(TSNE_MIN_SAMPLES, m):
            idx = torch.randperm(len(inputs), generator=generator)[:TSNE_SAMPLES]
            part = torch.from_numpy(tsne_partition(inputs[idx.to(inputs.device)], m, _seed(generator)))
            sub = mu[idx.to(mu.device)].float().cpu()
            centres = random_anchors(sub, m, generator)  # for a part k-means left empty (duplicate points)
            for k in range(m):
                if (part == k).any():
                    centres[k] = sub[part == k].mean(0)
            parts = torch.full((len(mu),), -1, dtype=torch.long)
            parts[idx] = part.long()
            return centres, f"t-SNE of {len(idx)} training inputs", parts
        method = "kmeans"
    if method == "kmeans" and len(mu) >= m:
        centres = kmeans_anchors(mu, m, generator)
        how = f"k-means on {len(mu)} training latents"
    else:
        centres, how = random_anchors(mu, m, generator), f"{len(mu)} random training latents"
    from nebula.latent.anchors import squared_distances

    return centres, how, squared_distances(mu.float().cpu(), centres).argmin(1)
