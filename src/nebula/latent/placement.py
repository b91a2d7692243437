"""Anchor placement at the end of pre-training: where the m anchors start.

* ``kmeans``: k-means (scikit-learn, n_init = 10) on the training latents mu: (N, d).
* ``random``: m random training latents.
* ``tsne``: a partition of the training samples from a 2-D t-SNE map (at most ``TSNE_SAMPLES``
  random samples; perplexity :func:`tsne_perplexity`, half the mean part size) of their *inputs* (flattened,
  reduced to 50 principal components when wider) or of their warmed-up *latents* (``space``), cut into m
  parts by k-means or by Ward linkage (``cut``); ``auto`` keeps the best separated map and cut
  (:func:`choose_map`); anchor k is the mean latent of part k. t-SNE keeps local
  neighbourhoods, which on small images separate classes better than briefly pre-trained latents do, while
  on tens of thousands of digits an autoencoder's latent separates them better than the pixels
  (docs/clustering.md); the anchor terms keep a good starting partition: the placement decides which
  classes share an anchor.

Every function returns anchors (m, d) and the name of the method actually used.
"""

from __future__ import annotations

import numpy as np
import torch

from nebula.config import ANCHOR_INITS, PLACEMENT_CUTS, PLACEMENT_MAPS, check_choice
from nebula.errors import ConfigError
from nebula.latent import mapcache

#: at most this many training samples go into the t-SNE map
TSNE_SAMPLES = 5000
#: below this many samples t-SNE is not used (its neighbourhoods need data): k-means on the latents instead
TSNE_MIN_SAMPLES = 100
#: ``train.placement_map=auto`` considers the latents' map from this many training samples on
LATENT_MAP_MIN_SAMPLES = 1000
#: ``train.placement_cut=auto``: Ward's worst part must beat k-means' with this many seeds (:func:`auto_cut`)
KMEANS_SEEDS = 5
METHODS = tuple(name for name in ANCHOR_INITS if name != "auto")
MAPS = PLACEMENT_MAPS
CUTS = PLACEMENT_CUTS
_CUT_NAMES = {"kmeans": "k-means", "ward": "Ward"}


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


def tsne_perplexity(n: int, m: int) -> float:
    """t-SNE perplexity for ``n`` points in ``m`` parts: half the mean part size n / (2 m), clipped to
    [5, 30] (and below (n - 1) / 3, scikit-learn's limit).

    The perplexity is the effective number of neighbours each point's affinities spread over; once it
    exceeds a cluster's size the map blends neighbouring clusters (faces with 20-30 images per person,
    docs/clustering.md). Sets with more than 60 samples per part keep scikit-learn's 30.
    """
    return float(min(np.clip(n / (2.0 * m), 5.0, 30.0), (n - 1) / 3.0))


def tsne_map(x: torch.Tensor, m: int, seed: int) -> np.ndarray:
    """(N, 2) t-SNE map of x: (N, ...) flattened, reduced to 50 principal components when wider, with the
    perplexity of :func:`tsne_perplexity` for ``m`` parts; computed once per content (:mod:`nebula.latent.mapcache`)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    flat = x.reshape(len(x), -1).double().cpu().numpy()
    perplexity, state = tsne_perplexity(len(flat), m), seed % (2**32 - 1)
    key = mapcache.map_key(flat, perplexity=perplexity, seed=state, pca=50, init="pca")
    emb = mapcache.lookup(key)
    if emb is None:
        if flat.shape[1] > 50:
            flat = PCA(50, random_state=state).fit_transform(flat)
        emb = TSNE(2, init="pca", perplexity=perplexity, random_state=state).fit_transform(flat)
        mapcache.store(key, emb)
    return emb


def map_partition(emb: np.ndarray, m: int, seed: int, cut: str = "kmeans") -> np.ndarray:
    """(N,) parts in [0, m) of a 2-D map emb: (N, 2), by ``cut``: ``kmeans`` (n_init = 10) or ``ward``
    (agglomerative, Ward linkage: N (N - 1) / 2 distances, at most ``TSNE_SAMPLES`` points here)."""
    from sklearn.cluster import AgglomerativeClustering, KMeans

    if cut == "ward":
        return AgglomerativeClustering(n_clusters=m, linkage="ward").fit_predict(emb)
    if cut == "kmeans":
        return KMeans(n_clusters=m, n_init=10, random_state=seed).fit_predict(emb)
    raise ConfigError(f"a map is cut by kmeans or ward, found {cut!r}")


def silhouette(emb: np.ndarray, parts: np.ndarray) -> float:
    """Silhouette in [-1, 1] of the parts (N,) of a map emb: (N, 2), how well separated they are: the mean
    over points of (b - a) / max(a, b), a the mean distance to its own part, b to the nearest other;
    scale-free, so maps of different spaces compare (-1 when fewer than 2 parts or every point its own)."""
    return silhouettes(emb, parts)[0]


def silhouettes(emb: np.ndarray, parts: np.ndarray) -> tuple[float, float]:
    """(mean, worst part) silhouette of the parts (N,) of a map emb: (N, 2): :func:`silhouette`, and the
    lowest over parts of the mean silhouette of the part's points (-1, -1 when it is not defined)."""
    from sklearn.metrics import silhouette_samples

    if not 1 < len(np.unique(parts)) < len(emb):
        return -1.0, -1.0
    values = silhouette_samples(emb, parts)
    means = np.bincount(parts, weights=values) / np.maximum(np.bincount(parts), 1)
    return float(values.mean()), float(means[np.bincount(parts) > 0].min())


def central_members(emb: np.ndarray, parts: np.ndarray, keep: float) -> np.ndarray:
    """(N,) bool: the ``keep`` fraction of each part of the map emb: (N, 2) whose points lie most clearly
    inside it, by the ratio of the distance to their own part's centre to that to the nearest other centre
    (near 0: deep inside; near 1: on the border, where k-means on the map makes its errors)."""
    if keep >= 1.0:
        return np.ones(len(parts), dtype=bool)
    m = int(parts.max()) + 1
    centres = np.stack([emb[parts == k].mean(0) if (parts == k).any() else np.full(2, np.inf) for k in range(m)])
    dist = np.sqrt(((emb[:, None, :] - centres[None]) ** 2).sum(-1))  # (N, m), m parts: N x m memory
    own = dist[np.arange(len(parts)), parts]
    dist[np.arange(len(parts)), parts] = np.inf
    ratio = own / np.maximum(dist.min(1), 1e-12)
    out = np.zeros(len(parts), dtype=bool)
    for k in range(m):
        members = np.flatnonzero(parts == k)
        if len(members):
            order = members[np.argsort(ratio[members], kind="stable")]
            out[order[: max(1, int(np.ceil(keep * len(members))))]] = True
    return out


def choose_map(inputs: torch.Tensor | None, mu: torch.Tensor, m: int, space: str,
               generator: torch.Generator, keep: float = 1.0,
               cut: str = "auto") -> tuple[np.ndarray, np.ndarray, str]:
    """The partition (N,) of the t-SNE map ``space`` and the cut ``cut`` pick, and what it was, for the rows
    of inputs and mu.

    Maps: ``input``, the map of the inputs; ``latent``, of the latents mu (N, d); ``auto``: the inputs' map,
    and from ``LATENT_MAP_MIN_SAMPLES`` samples on also the latents' one. An autoencoder's latent can
    separate classes that the pixels do not (N2D, McConaughy & Malik 2019: MNIST); on a few hundred samples
    it has too little to learn from and its map, though tight, follows lighting or pose instead
    (docs/clustering.md). Cuts (:func:`map_partition`): ``kmeans``, ``ward``, ``auto`` both. k-means
    prefers parts of equal spread, so a map whose classes differ in size can get its largest class split
    in two and two small ones merged; Ward linkage merges the map's points bottom-up and keeps such a class
    whole; ``auto`` takes Ward's partition only when its worst part is better separated (:func:`auto_cut`).
    Of the maps, the partition with the highest :func:`silhouette` is kept (computed only when there are
    several candidates). Also returns the (N,) mask of each part's ``keep`` most
    central members (:func:`central_members`).
    """
    maps: list[tuple[str, torch.Tensor]] = []
    if inputs is not None and space in ("input", "auto"):
        maps.append(("inputs", inputs))
    if space == "latent" or inputs is None or (space == "auto" and len(mu) >= LATENT_MAP_MIN_SAMPLES):
        maps.append(("latents", mu))
    several = len(maps) > 1 or cut == "auto"
    chosen, notes = [], []
    for name, x in maps:
        seed = _seed(generator)
        emb = tsne_map(x, m, seed)
        if cut != "auto":
            parts = map_partition(emb, m, seed, cut)
            chosen.append((silhouette(emb, parts) if several else 0.0, name, cut, parts, emb))
            notes.append(f"{name} {chosen[-1][0]:.3f}")
            continue
        c, parts, score, note = auto_cut(emb, m, seed)
        chosen.append((score, name, c, parts, emb))
        notes.append(f"{name}/{note}")
    best = max(chosen, key=lambda item: item[0])
    how = f"t-SNE of {len(mu)} training {best[1]}" + (f", {_CUT_NAMES[best[2]]} cut" if cut == "auto" else "")
    if several:
        how += " (silhouette " + ", ".join(notes) + ")"
    return best[3], central_members(best[4], best[3], keep), how


def auto_cut(emb: np.ndarray, m: int, seed: int) -> tuple[str, np.ndarray, float, str]:
    """``train.placement_cut = auto`` on one map emb: (N, 2): the cut, its (N,) parts, their silhouette, and a
    note for the log. Both cuts are judged by their worst part (:func:`silhouettes`): k-means errs by
    splitting a class (two adjacent parts, both poorly separated), Ward by merging two or leaving a straggler
    part; either error shows in one part, where the mean silhouette over all points hides it behind the large
    parts. k-means' partition depends on its seed, the more so on a map without clear gaps, and so does its
    worst part; Ward's does not. Ward is therefore taken only when its worst part is better separated than
    that of k-means run with each of ``KMEANS_SEEDS`` seeds (seed, seed + 1, ...); otherwise k-means with
    ``seed`` (docs/clustering.md, fifth pass)."""
    kmeans = map_partition(emb, m, seed, "kmeans")
    ward = map_partition(emb, m, seed, "ward")
    (s_kmeans, w_kmeans), (s_ward, w_ward) = silhouettes(emb, kmeans), silhouettes(emb, ward)
    others = [silhouettes(emb, map_partition(emb, m, seed + r, "kmeans"))[1] for r in range(1, KMEANS_SEEDS)]
    best = max([w_kmeans, *others])
    note = (f"k-means {s_kmeans:.3f} (worst part {w_kmeans:.3f}, best of {KMEANS_SEEDS} seeds {best:.3f}), "
            f"{_CUT_NAMES['ward']} {s_ward:.3f} (worst part {w_ward:.3f})")
    if w_ward > best:
        return "ward", ward, s_ward, note
    return "kmeans", kmeans, s_kmeans, note


def place_anchors(method: str, mu: torch.Tensor, m: int, generator: torch.Generator,
                  inputs: torch.Tensor | None = None, space: str = "input",
                  cut: str = "auto") -> tuple[torch.Tensor, str]:
    """Anchors (m, d) for the training latents mu: (N, d) (and inputs (N, ...) for ``tsne``)."""
    centres, how, _ = place_anchors_with_parts(method, mu, m, generator, inputs, space, cut=cut)
    return centres, how


def place_anchors_with_parts(method: str, mu: torch.Tensor, m: int, generator: torch.Generator,
                             inputs: torch.Tensor | None = None,
                             space: str = "input", keep: float = 1.0,
                             cut: str = "auto") -> tuple[torch.Tensor, str, torch.Tensor]:
    """:func:`place_anchors` plus the partition it used: (N,) int64 part of each latent, -1 for samples
    outside the t-SNE subset (k-means: its labels; random: the nearest anchor). ``space`` and ``cut`` are the
    t-SNE map of ``tsne`` and how it is cut into parts (:func:`choose_map`); there only each part's ``keep``
    most central members keep their part
    (the others get -1: their anchor is the nearest one, as the model learns it)."""
    check_choice("train.placement_map", space, MAPS)
    check_choice("train.placement_cut", cut, CUTS)
    check_choice("train.anchor_init", method, METHODS)  # auto is resolved by the caller
    if method == "tsne":
        if inputs is not None and not inputs.is_floating_point():
            raise ConfigError("train.anchor_init=tsne needs real-valued inputs (images, voxels), found "
                              f"{inputs.dtype} (e.g. token ids): use kmeans")
        if len(mu) >= max(TSNE_MIN_SAMPLES, m) and (inputs is not None or space == "latent"):
            idx = torch.randperm(len(mu), generator=generator)[:TSNE_SAMPLES]
            sub = mu[idx.to(mu.device)].float().cpu()
            sub_inputs = inputs[idx.to(inputs.device)] if inputs is not None else None
            chosen, central, how = choose_map(sub_inputs, sub, m, space, generator, keep, cut)
            part = torch.from_numpy(chosen)
            centres = random_anchors(sub, m, generator)  # for a part the cut left empty (duplicate points)
            for k in range(m):
                if (part == k).any():
                    centres[k] = sub[part == k].mean(0)
            parts = torch.full((len(mu),), -1, dtype=torch.long)
            parts[idx] = torch.where(torch.from_numpy(central), part.long(), -1)
            if keep < 1.0:
                how += f", the central {keep:.0%} of each part as targets"
            return centres, how, parts
        method = "kmeans"
    if method == "kmeans" and len(mu) >= m:
        centres = kmeans_anchors(mu, m, generator)
        how = f"k-means on {len(mu)} training latents"
    else:
        centres, how = random_anchors(mu, m, generator), f"{len(mu)} random training latents"
    from nebula.latent.anchors import squared_distances

    return centres, how, squared_distances(mu.float().cpu(), centres).argmin(1)
