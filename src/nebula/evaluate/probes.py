"""Supervised read-outs of frozen latents: kNN and linear probes, fit on split 0, scored on split 1.

* kNN: majority vote of the ``k`` nearest training latents under cosine distance
  ``1 - <u, v> / (|u| |v|)`` (scikit-learn, brute force), reported for k = 10 and k = 1.
* linear probe: multinomial logistic regression on latents standardised with the training split's
  mean and standard deviation (``StandardScaler`` fitted on split 0 only).
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def knn_accuracy(z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, y_test: np.ndarray,
                 k: int = 10, metric: str = "cosine") -> float:
    """Accuracy of a ``k``-nearest-neighbour vote.

    Args:
        z_train: (N_tr, d), y_train: (N_tr,); z_test: (N_te, d), y_test: (N_te,).
        k: neighbours (clipped to N_tr); metric: scikit-learn metric name (cosine by default).
    """
    if len(z_test) == 0 or len(z_train) == 0:
        return float("nan")
    clf = KNeighborsClassifier(n_neighbors=min(k, len(z_train)), metric=metric, algorithm="brute")
    clf.fit(np.asarray(z_train, dtype=np.float64), y_train)
    return float((clf.predict(np.asarray(z_test, dtype=np.float64)) == y_test).mean())


def linear_probe_accuracy(z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, y_test: np.ndarray,
                          max_iter: int = 2000, seed: int = 0) -> float:
    """Test accuracy of logistic regression (L2, C = 1, lbfgs) on standardised latents (N, d)."""
    if len(z_test) == 0 or len(np.unique(y_train)) < 2:
        return float("nan")
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter, random_state=seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        probe.fit(np.asarray(z_train, dtype=np.float64), y_train)
    return float((probe.predict(np.asarray(z_test, dtype=np.float64)) == y_test).mean())


def probe_scores(z: np.ndarray, y: np.ndarray, split: np.ndarray, seed: int = 0) -> dict[str, float | int]:
    """knn10, knn1 (cosine) and linear_probe accuracies trained on ``split == 0`` and tested on
    ``split == 1``, over labelled samples (``y >= 0``) of ``z`` (N, d); plus the sample counts."""
    labelled = np.asarray(y) >= 0
    train = labelled & (np.asarray(split) == 0)
    test = labelled & (np.asarray(split) == 1)
    ztr, ytr, zte, yte = z[train], y[train], z[test], y[test]
    return {
        "knn10": knn_accuracy(ztr, ytr, zte, yte, k=10),
        "knn1": knn_accuracy(ztr, ytr, zte, yte, k=1),
        "linear_probe": linear_probe_accuracy(ztr, ytr, zte, yte, seed=seed),
        "train_samples": int(train.sum()),
        "test_samples": int(test.sum()),
    }
