"""kNN (cosine) and linear probes: train split only, tested on the test split."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

from nebula.evaluate.probes import knn_accuracy, linear_probe_accuracy, probe_scores


def test_knn_uses_cosine_distance():
    train = np.array([[1.0, 0.0], [10.0, 10.0]])
    y = np.array([0, 1])
    test = np.array([[20.0, 1.0]])  # Euclidean-nearest is [10, 10], angle-nearest is [1, 0]
    assert knn_accuracy(train, y, test, np.array([0]), k=1) == 1.0
    assert knn_accuracy(train, y, test, np.array([0]), k=1, metric="euclidean") == 0.0


def test_knn_matches_scikit_learn_and_k_is_clipped():
    rng = np.random.default_rng(0)
    ztr, zte = rng.normal(size=(80, 5)), rng.normal(size=(30, 5))
    ytr, yte = rng.integers(0, 3, 80), rng.integers(0, 3, 30)
    ref = KNeighborsClassifier(10, metric="cosine", algorithm="brute").fit(ztr, ytr).predict(zte)
    assert knn_accuracy(ztr, ytr, zte, yte, k=10) == pytest.approx((ref == yte).mean())
    assert 0.0 <= knn_accuracy(ztr[:3], ytr[:3], zte, yte, k=10) <= 1.0


def test_linear_probe_separable_and_trained_on_split_zero_only():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 40)
    z = np.eye(3)[y] * 5 + rng.normal(scale=0.3, size=(120, 3)) + 100.0  # offset: standardisation matters
    split = np.tile([0, 0, 0, 1], 30)
    s = probe_scores(z, y, split)
    assert s["linear_probe"] == 1.0 and s["knn10"] == 1.0 and s["knn1"] == 1.0
    assert s["train_samples"] == 90 and s["test_samples"] == 30
    # test labels are only used for scoring: relabelled test samples score 0
    y_bad = y.copy()
    y_bad[split == 1] = (y_bad[split == 1] + 1) % 3
    s_bad = probe_scores(z, y_bad, split)
    assert s_bad["linear_probe"] == 0.0 and s_bad["knn1"] == 0.0
    # unlabelled samples (-1) are ignored
    y_unl = y.copy()
    y_unl[:6] = -1
    assert probe_scores(z, y_unl, split)["train_samples"] < 90


def test_probes_without_test_split_are_nan():
    z = np.random.default_rng(0).normal(size=(20, 2))
    y = np.arange(20) % 2
    assert np.isnan(linear_probe_accuracy(z, y, z[:0], y[:0]))
    assert np.isnan(knn_accuracy(z, y, z[:0], y[:0]))
