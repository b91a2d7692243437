"""Clustering, anchor and covariance metrics against hand-computed values and scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from nebula.evaluate import metrics as M


def test_hungarian_accuracy_of_a_permuted_labelling_is_one():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, size=200)
    perm = rng.permutation(7)
    assert M.hungarian_accuracy(y, perm[y] + 100) == 1.0
    assert M.purity(y, perm[y]) == 1.0


def test_hungarian_accuracy_hand_case():
    # contingency (classes x clusters) [[1, 2], [3, 0]]: best matching 2 + 3 of 6
    y = np.array([0, 0, 0, 1, 1, 1])
    pred = np.array([1, 1, 0, 0, 0, 0])
    assert M.hungarian_accuracy(y, pred) == pytest.approx(5 / 6)


def test_purity_differs_from_accuracy_when_clusters_share_a_majority_class():
    # contingency [[2, 2, 0], [0, 0, 2], [0, 0, 2]]: purity (2 + 2 + 2) / 8, one-to-one only (2 + 2 + 0) / 8
    y = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    pred = np.array([0, 0, 1, 1, 2, 2, 2, 2])
    assert M.purity(y, pred) == pytest.approx(0.75)
    assert M.hungarian_accuracy(y, pred) == pytest.approx(0.5)
    # more clusters than classes: singletons are pure, but only 2 of them can be matched
    assert M.purity([0, 0, 1, 1], [0, 1, 2, 3]) == 1.0
    assert M.hungarian_accuracy([0, 0, 1, 1], [0, 1, 2, 3]) == 0.5


def test_nmi_ari_ami_on_a_known_contingency_table():
    # contingency [[2, 1, 0], [0, 1, 2]]: MI = (2/3) ln 2, H(Y) = ln 2, H(K) = ln 3
    y = np.array([0, 0, 0, 1, 1, 1])
    pred = np.array([0, 0, 1, 1, 2, 2])
    s = M.clustering_scores(y, pred)
    mi = 2 / 3 * math.log(2)
    assert s["nmi"] == pytest.approx(mi / ((math.log(2) + math.log(3)) / 2))
    # ARI: sum_ij C(n_ij,2) = 2, sum_i C(a_i,2) = 6, sum_j C(b_j,2) = 3, C(6,2) = 15
    expected = 6 * 3 / 15
    assert s["ari"] == pytest.approx((2 - expected) / ((6 + 3) / 2 - expected))
    assert s["accuracy"] == pytest.approx(4 / 6)
    assert s["purity"] == pytest.approx(5 / 6)
    assert s["clusters"] == 3


def test_scores_match_scikit_learn_on_random_partitions():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 5, size=300)
    pred = np.where(rng.random(300) < 0.6, y, rng.integers(0, 6, size=300))
    s = M.clustering_scores(y, pred)
    assert s["nmi"] == pytest.approx(skm.normalized_mutual_info_score(y, pred, average_method="arithmetic"))
    assert s["ari"] == pytest.approx(skm.adjusted_rand_score(y, pred))
    assert s["ami"] == pytest.approx(skm.adjusted_mutual_info_score(y, pred, average_method="arithmetic"))
    # brute force over all one-to-one maps of the 5 classes into the 6 clusters
    import itertools

    table = skm.cluster.contingency_matrix(y, pred)
    best = max(sum(table[i, p[i]] for i in range(5)) for p in itertools.permutations(range(6), 5))
    assert s["accuracy"] == pytest.approx(best / 300)
    assert s["purity"] >= s["accuracy"]


def test_independent_partitions_score_near_zero():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 4000)
    pred = rng.integers(0, 4, 4000)
    s = M.clustering_scores(y, pred)
    assert abs(s["ari"]) < 0.01 and abs(s["ami"]) < 0.01 and s["nmi"] < 0.01


def test_kmeans_recovers_separated_blobs():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [20, 0], [0, 20]], dtype=float)
    y = np.repeat(np.arange(3), 30)
    z = centres[y] + rng.normal(size=(90, 2))
    pred = M.kmeans_labels(z, 3, seed=0, n_init=10)
    assert M.hungarian_accuracy(y, pred) == 1.0
    with pytest.raises(ValueError):
        M.kmeans_labels(z, 3, n_init=0)


def test_anchor_statistics_hand_case():
    anchors = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    z = np.array([[1.0, 0.0], [-1.0, 0.0], [10.0, 2.0]])
    assign = np.array([0, 0, 1])
    s = M.anchor_statistics(z, assign, anchors)
    assert s["usage"] == [2, 1, 0]
    assert s["dead"] == 1 and s["used"] == 2
    assert s["spread"][0] == pytest.approx(1.0) and s["spread"][1] == pytest.approx(2.0) and s["spread"][2] is None
    assert s["mean_spread"] == pytest.approx(math.sqrt(6 / 3))
    assert np.allclose(s["distances"], [[0, 10, 10], [10, 0, math.sqrt(200)], [10, math.sqrt(200), 0]])
    assert s["min_distance"] == pytest.approx(10.0)
    assert s["max_distance"] == pytest.approx(math.sqrt(200))
    assert s["separation"] == pytest.approx(10 / math.sqrt(2))
    p = np.array([2, 1]) / 3
    assert s["usage_entropy"] == pytest.approx(-(p * np.log(p)).sum())


def test_covariance_and_off_diagonal_energy():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(500, 4))
    assert np.allclose(M.latent_covariance(z), np.cov(z, rowvar=False))
    assert M.off_diagonal_energy_ratio(np.diag([1.0, 2.0, 3.0])) == 0.0
    assert M.off_diagonal_energy_ratio(np.ones((2, 2))) == pytest.approx(0.5)
    assert math.isnan(M.off_diagonal_energy_ratio(np.zeros((3, 3))))
    # perfectly correlated dimensions: C = [[1, 2], [2, 4]] * var -> 8 / 25 of the energy off the diagonal
    t = rng.normal(size=1000)
    s = M.covariance_statistics(np.stack([t, 2 * t], 1))
    assert s["off_diagonal_energy_ratio"] == pytest.approx(8 / 25)
    assert np.array(s["matrix"]).shape == (2, 2)
