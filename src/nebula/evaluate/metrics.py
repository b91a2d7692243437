"""Latent-space metrics computed from saved embeddings: clustering, anchors and covariance.

Clustering scores compare a predicted partition ``pred`` (N,) with true labels ``y`` (N,):

* Hungarian accuracy: ``max_pi (1/N) sum_i [y_i = pi(pred_i)]`` over one-to-one maps ``pi`` from
  clusters to classes, solved with :func:`scipy.optimize.linear_sum_assignment` on the contingency
  table (clusters left without a class when there are more clusters than classes count as errors).
* purity: ``(1/N) sum_k max_c n_kc`` (each cluster takes its majority class; several clusters may take
  the same class, so purity >= accuracy, with equality when the majority classes are distinct).
* NMI with arithmetic averaging ``I(Y; K) / ((H(Y) + H(K)) / 2)``, ARI and AMI (arithmetic), from
  scikit-learn.

Anchor statistics summarise a nearest-anchor assignment (usage, dead anchors, pairwise anchor
distances, within-anchor spread); the covariance section gives the latent covariance ``C`` (d x d) and
its off-diagonal energy ratio ``sum_{i != j} C_ij^2 / sum_ij C_ij^2`` (0 for a diagonal covariance,
i.e. decorrelated latent dimensions).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn import metrics as skm
from sklearn.cluster import KMeans
from sklearn.metrics.cluster import contingency_matrix


# --------------------------------------------------------------------------- clustering
def hungarian_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    """Best one-to-one cluster -> class matching accuracy.

    Args:
        y: (N,) true labels; pred: (N,) cluster ids (any integers, any number of clusters).
    Returns:
        accuracy in [0, 1].
    """
    y, pred = np.asarray(y), np.asarray(pred)
    if len(y) == 0:
        return float("nan")
    table = contingency_matrix(y, pred)  # (classes, clusters)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / len(y))


def purity(y: np.ndarray, pred: np.ndarray) -> float:
    """Cluster purity ``(1/N) sum_k max_c n_kc``: every cluster labelled by its majority class.

    Args:
        y: (N,) true labels; pred: (N,) cluster ids.
    """
    y, pred = np.asarray(y), np.asarray(pred)
    if len(y) == 0:
        return float("nan")
    table = contingency_matrix(y, pred)
    return float(table.max(axis=0).sum() / len(y))


def clustering_scores(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """accuracy (Hungarian), purity, nmi (arithmetic), ari, ami (arithmetic) and the number of
    non-empty clusters, for labels ``y`` (N,) and clusters ``pred`` (N,)."""
    y, pred = np.asarray(y), np.asarray(pred)
    return {
        "accuracy": hungarian_accuracy(y, pred),
        "purity": purity(y, pred),
        "nmi": float(skm.normalized_mutual_info_score(y, pred, average_method="arithmetic")),
        "ari": float(skm.adjusted_rand_score(y, pred)),
        "ami": float(skm.adjusted_mutual_info_score(y, pred, average_method="arithmetic")),
        "clusters": int(len(np.unique(pred))),
    }


def kmeans_labels(z: np.ndarray, k: int, seed: int = 0, n_init: int = 10) -> np.ndarray:
    """k-means (scikit-learn, k-means++ init, ``n_init`` restarts) cluster ids (N,) of ``z`` (N, d)."""
    if n_init < 1:
        raise ValueError(f"n_init must be >= 1, found {n_init}")
    z = np.asarray(z, dtype=np.float64).reshape(len(z), -1)
    return KMeans(n_clusters=int(max(1, min(k, len(z)))), n_init=n_init, random_state=seed).fit_predict(z)


# --------------------------------------------------------------------------- anchors
def anchor_statistics(z: np.ndarray, assign: np.ndarray, anchors: np.ndarray) -> dict[str, Any]:
    """Usage and geometry of the anchors.

    Args:
        z: (N, d) latents; assign: (N,) nearest-anchor ids in [0, m); anchors: (m, d).
    Returns:
        usage (m,) counts, usage_fraction (m,), dead (anchors owning no latent), used, usage_entropy
        (nats; log m when uniform), distances (m, m) Euclidean anchor distances with the min/mean/max
        over pairs, spread (m,) within-anchor RMS distance ``sqrt(mean_{i: c_i = k} ||z_i - a_k||^2)``
        (NaN for dead anchors), mean_spread (usage-weighted RMS over all latents) and
        separation = min pairwise distance / mean_spread.
    """
    z = np.asarray(z, dtype=np.float64)
    anchors = np.asarray(anchors, dtype=np.float64)
    assign = np.asarray(assign, dtype=np.int64)
    m = len(anchors)
    usage = np.bincount(assign, minlength=m)[:m]
    frac = usage / max(usage.sum(), 1)
    nz = frac[frac > 0]
    sq = ((z - anchors[assign]) ** 2).sum(1)  # (N,) squared distance to own anchor
    sums = np.bincount(assign, weights=sq, minlength=m)[:m]
    with np.errstate(invalid="ignore", divide="ignore"):
        spread = np.sqrt(np.where(usage > 0, sums / np.maximum(usage, 1), np.nan))
    diff = anchors[:, None, :] - anchors[None, :, :]  # (m, m, d): m is small
    dist = np.sqrt((diff**2).sum(-1))
    pairs = dist[np.triu_indices(m, k=1)]
    mean_spread = float(np.sqrt(sq.mean())) if len(sq) else float("nan")
    min_dist = float(pairs.min()) if len(pairs) else float("nan")
    return {
        "num_anchors": int(m),
        "usage": usage.astype(int).tolist(),
        "usage_fraction": frac.tolist(),
        "dead": int((usage == 0).sum()),
        "used": int((usage > 0).sum()),
        "usage_entropy": float(-(nz * np.log(nz)).sum()),
        "distances": dist.tolist(),
        "min_distance": min_dist,
        "mean_distance": float(pairs.mean()) if len(pairs) else float("nan"),
        "max_distance": float(pairs.max()) if len(pairs) else float("nan"),
        "spread": [None if not np.isfinite(s) else float(s) for s in spread],
        "mean_spread": mean_spread,
        "separation": min_dist / mean_spread if mean_spread > 0 else float("nan"),
    }


# --------------------------------------------------------------------------- covariance
def latent_covariance(z: np.ndarray) -> np.ndarray:
    """Sample covariance (d, d) of latents ``z`` (N, d), ``(z - mean)^T (z - mean) / (N - 1)``."""
    z = np.asarray(z, dtype=np.float64)
    if len(z) < 2:
        return np.zeros((z.shape[1], z.shape[1]))
    return np.atleast_2d(np.cov(z, rowvar=False))


def off_diagonal_energy_ratio(cov: np.ndarray) -> float:
    """``sum_{i != j} C_ij^2 / sum_ij C_ij^2`` of a (d, d) matrix (0 = diagonal); NaN for C = 0."""
    cov = np.asarray(cov, dtype=np.float64)
    total = float((cov**2).sum())
    if total == 0.0:
        return float("nan")
    return float((total - (np.diag(cov) ** 2).sum()) / total)


def covariance_statistics(z: np.ndarray) -> dict[str, Any]:
    """matrix (d, d) covariance, off_diagonal_energy_ratio, trace and the per-dimension variances."""
    cov = latent_covariance(z)
    return {
        "matrix": cov.tolist(),
        "off_diagonal_energy_ratio": off_diagonal_energy_ratio(cov),
        "trace": float(np.trace(cov)),
        "variances": np.diag(cov).tolist(),
    }
