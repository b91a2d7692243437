"""Anchor placement: k-means, random and t-SNE partitions (of the inputs or of the latents, cut by
k-means or Ward linkage), the perplexity rule, fallbacks and bad inputs."""

from __future__ import annotations

import pytest
import torch

from nebula.errors import ConfigError
from nebula.latent import placement
from nebula.latent.placement import place_anchors, place_anchors_with_parts, tsne_perplexity
from nebula.modalities import resolve_anchor_init


def blobs(n_per: int = 60, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inputs (3 n, 1, 8, 8) from 3 well-separated prototypes, latents (3 n, 2) and the part of each."""
    g = torch.Generator().manual_seed(seed)
    protos = torch.zeros(3, 64)
    protos[0, :20], protos[1, 22:42], protos[2, 44:] = 1.0, 1.0, 1.0
    part = torch.arange(3).repeat_interleave(n_per)
    x = (protos[part] + 0.05 * torch.randn(len(part), 64, generator=g)).view(-1, 1, 8, 8)
    centres = torch.tensor([[4.0, 0.0], [0.0, 4.0], [-4.0, -4.0]])
    mu = centres[part] + 0.3 * torch.randn(len(part), 2, generator=g)
    return x, mu, part


def test_tsne_places_each_anchor_on_the_mean_latent_of_one_input_cluster():
    x, mu, part = blobs()
    anchors, how = place_anchors("tsne", mu, 3, torch.Generator().manual_seed(0), x)
    assert how.startswith("t-SNE of 180")
    means = torch.stack([mu[part == k].mean(0) for k in range(3)])
    # the anchors are the three part means, in some order
    match = torch.cdist(anchors, means).argmin(1)
    assert sorted(match.tolist()) == [0, 1, 2]
    torch.testing.assert_close(anchors, means[match], atol=1e-5, rtol=0)


def test_tsne_even_when_the_latents_do_not_separate_the_inputs():
    x, mu, part = blobs()
    mu = torch.randn(len(part), 2, generator=torch.Generator().manual_seed(3))  # latents carry no structure
    anchors, _ = place_anchors("tsne", mu, 3, torch.Generator().manual_seed(0), x)
    means = torch.stack([mu[part == k].mean(0) for k in range(3)])
    assert torch.cdist(anchors, means).min(1).values.max() < 1e-5


def test_kmeans_random_and_fallbacks():
    x, mu, _ = blobs(10)
    g = torch.Generator().manual_seed(0)
    anchors, how = place_anchors("kmeans", mu, 3, g)
    assert anchors.shape == (3, 2) and how.startswith("k-means")
    anchors, how = place_anchors("random", mu, 3, g)
    assert how.endswith("random training latents") and all((mu == a).all(1).any() for a in anchors)
    # too few samples for t-SNE, or no inputs: k-means on the latents, and the message says so
    assert place_anchors("tsne", mu, 3, g, x)[1].startswith("k-means")
    assert place_anchors("tsne", mu, 3, g, None)[1].startswith("k-means")
    # fewer latents than anchors: padded random
    anchors, how = place_anchors("kmeans", mu[:2], 3, g)
    assert anchors.shape == (3, 2) and "random" in how


def test_bad_placement_requests():
    x, mu, _ = blobs()
    with pytest.raises(ConfigError, match="real-valued inputs"):
        place_anchors("tsne", mu, 3, torch.Generator(), torch.zeros(len(mu), 12, dtype=torch.long))
    with pytest.raises(ConfigError, match="train.anchor_init"):
        place_anchors("spectral", mu, 3, torch.Generator())


def test_auto_resolves_per_modality():
    assert resolve_anchor_init("image", "auto") == "tsne"
    assert resolve_anchor_init("text", "auto") == "kmeans"
    assert resolve_anchor_init("points", "auto") == "kmeans"
    assert resolve_anchor_init("image", "random") == "random"


def test_tsne_placement_on_integer_inputs_is_refused_before_training():
    import numpy as np

    from nebula.config import Config
    from nebula.data.base import NebulaDataset
    from nebula.run import build_model

    cfg = Config().apply_variant("tvae")
    cfg.train.anchor_init = "tsne"
    ds = NebulaDataset(x=torch.zeros(8, 12, dtype=torch.long), y=None, split=np.zeros(8, np.int8),
                       meta={"name": "tokens", "modality": "image"})
    with pytest.raises(ConfigError, match="tokens has torch.int64"):
        build_model(cfg, ds)
    cfg.train.anchor_init = "kmeans"
    assert build_model(cfg, ds).anchor_init == "kmeans"


def test_perplexity_is_half_the_mean_part_size_within_5_and_30():
    assert tsne_perplexity(213, 10) == pytest.approx(10.65)  # 21 faces a person
    assert tsne_perplexity(2000, 100) == 10.0
    assert tsne_perplexity(10000, 10) == 30.0  # large parts keep scikit-learn's default
    assert tsne_perplexity(300, 100) == 5.0  # floor
    assert tsne_perplexity(12, 1) == pytest.approx(11 / 3)  # below scikit-learn's (n - 1) / 3


def noise_inputs_clustered_latents(n_per: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inputs (3 n, 1, 8, 8) of pure noise, latents (3 n, 2) in three tight, far-apart blobs."""
    g = torch.Generator().manual_seed(seed)
    part = torch.arange(3).repeat_interleave(n_per)
    x = torch.rand(len(part), 1, 8, 8, generator=g)
    centres = torch.tensor([[10.0, 0.0], [0.0, 10.0], [-10.0, -10.0]])
    return x, centres[part] + 0.2 * torch.randn(len(part), 2, generator=g), part


def purity(parts: torch.Tensor, truth: torch.Tensor) -> float:
    """Fraction of samples in the majority true class of their part."""
    return sum(int(torch.bincount(truth[parts == k]).max()) for k in parts.unique().tolist()) / len(truth)


def test_auto_map_takes_the_latents_when_they_separate_better(monkeypatch):
    monkeypatch.setattr(placement, "LATENT_MAP_MIN_SAMPLES", 150)
    x, mu, part = noise_inputs_clustered_latents(60)
    _, how, parts = place_anchors_with_parts("tsne", mu, 3, torch.Generator().manual_seed(0), x, "auto")
    assert how.startswith("t-SNE of 180 training latents, ") and "(silhouette inputs/k-means " in how
    assert purity(parts, part) == 1.0
    # below the size at which an autoencoder's latent is trusted: the inputs' map, as before
    x, mu, part = noise_inputs_clustered_latents(40)
    _, how, parts = place_anchors_with_parts("tsne", mu, 3, torch.Generator().manual_seed(0), x, "auto")
    assert how.startswith("t-SNE of 120 training inputs, ") and "latents" not in how and purity(parts, part) < 0.8
    # asked for explicitly, the latents' map needs no inputs; one map and one cut: no silhouette to report
    _, how, parts = place_anchors_with_parts("tsne", mu, 3, torch.Generator().manual_seed(0), None, "latent",
                                             cut="kmeans")
    assert how == "t-SNE of 120 training latents" and purity(parts, part) == 1.0


def test_auto_map_keeps_the_inputs_when_they_separate_better(monkeypatch):
    monkeypatch.setattr(placement, "LATENT_MAP_MIN_SAMPLES", 150)
    x, mu, part = blobs()
    mu = torch.randn(len(part), 2, generator=torch.Generator().manual_seed(3))  # latents carry no structure
    _, how, parts = place_anchors_with_parts("tsne", mu, 3, torch.Generator().manual_seed(0), x, "auto")
    assert how.startswith("t-SNE of 180 training inputs, ") and purity(parts, part) == 1.0


def test_auto_cut_keeps_the_better_separated_partition_of_the_map(monkeypatch):
    import numpy as np

    x, mu, part = blobs()
    kmeans_cut = placement.map_partition

    def spoilt(emb, m, seed):  # part 0 split in two, parts 1 and 2 merged: what k-means does to a large class
        good = kmeans_cut(emb, m, seed, "kmeans")
        return np.where(good == 0, (np.arange(len(good)) % 2) * 2, np.minimum(good, 1))

    for good in ("kmeans", "ward"):  # the cut that returns the true parts is kept, whichever it is
        monkeypatch.setattr(placement, "map_partition", lambda emb, m, seed, cut, good=good:
                            kmeans_cut(emb, m, seed, "kmeans") if cut == good else spoilt(emb, m, seed))
        _, how, parts = place_anchors_with_parts("tsne", mu, 3, torch.Generator().manual_seed(0), x, "input")
        name = {"kmeans": "k-means", "ward": "Ward"}[good]
        assert how.startswith(f"t-SNE of 180 training inputs, {name} cut (silhouette inputs/k-means ")
        assert purity(parts, part) == 1.0


def test_auto_cut_judges_a_partition_by_its_worst_part(monkeypatch):
    import numpy as np

    from nebula.latent.placement import auto_cut, silhouettes

    rng = np.random.RandomState(0)  # two large classes far apart, two small ones side by side
    sizes, centres = [400, 400, 20, 20], [(0, 0), (8, 0), (4, 7), (4.8, 7)]
    emb = np.concatenate([rng.randn(n, 2) * 0.5 + c for n, c in zip(sizes, centres)])
    truth = np.repeat(np.arange(4), sizes)
    other = np.where(truth == 3, 2, truth)  # the small ones merged, the first large one split in two
    other[np.flatnonzero(truth == 0)[emb[truth == 0, 0] > 0]] = 3
    (mean_t, worst_t), (mean_o, worst_o) = silhouettes(emb, truth), silhouettes(emb, other)
    assert mean_t > mean_o and worst_t < worst_o  # the two criteria disagree here
    for ward, expected in ((other, "ward"), (truth, "kmeans")):
        parts = {"kmeans": truth if ward is other else other, "ward": ward}
        monkeypatch.setattr(placement, "map_partition", lambda emb, m, seed, cut, parts=parts: parts[cut])
        cut, chosen, score, note = auto_cut(emb, 4, 0)
        assert cut == expected and (chosen is other) and score == pytest.approx(mean_o)
        assert "worst part" in note
    # Ward's worst part beats k-means' with its first seed but not with another: k-means (its first seed) stays
    worse = truth.copy()
    worse[np.flatnonzero(truth == 2)[:8]] = 3  # part of one small class given to its neighbour
    assert silhouettes(emb, worse)[1] < worst_t < worst_o
    seeds = []

    def by_seed(emb, m, seed, cut):
        seeds.append(seed)
        return truth if cut == "ward" else (other if seed == 10 else worse)

    monkeypatch.setattr(placement, "map_partition", by_seed)
    cut, chosen, _, _ = auto_cut(emb, 4, 9)
    assert cut == "kmeans" and chosen is worse and len(set(seeds) - {9}) == placement.KMEANS_SEEDS - 1
    monkeypatch.setattr(placement, "map_partition", lambda emb, m, seed, cut: truth if cut == "ward" else worse)
    assert auto_cut(emb, 4, 9)[0] == "ward"  # better than k-means with every seed
    assert silhouettes(emb, np.zeros(len(emb), dtype=int)) == (-1.0, -1.0)


def test_ward_cut_of_a_map():
    import numpy as np

    from nebula.latent.placement import map_partition

    rng = np.random.RandomState(0)
    emb = np.concatenate([rng.randn(30, 2) * 0.3 + c for c in ((0, 0), (5, 0), (0, 5))])
    parts = map_partition(emb, 3, 0, "ward")
    assert sorted(np.bincount(parts).tolist()) == [30, 30, 30]
    assert all(len(set(parts[i * 30:(i + 1) * 30])) == 1 for i in range(3))
    with pytest.raises(ConfigError, match="kmeans or ward, found 'dbscan'"):
        map_partition(emb, 3, 0, "dbscan")


def test_unknown_map_is_refused():
    from nebula.config import Config

    x, mu, _ = blobs(10)
    with pytest.raises(ConfigError, match="train.placement_map"):
        place_anchors("tsne", mu, 3, torch.Generator(), x, "pixels")
    cfg = Config()
    cfg.train.placement_map = "pixels"
    with pytest.raises(ConfigError, match="train.placement_map must be auto, input or latent"):
        cfg.validate()
    with pytest.raises(ConfigError, match="train.placement_cut must be auto, kmeans or ward"):
        place_anchors("tsne", mu, 3, torch.Generator(), x, "input", cut="dbscan")
    cfg = Config()
    cfg.train.placement_cut = "dbscan"
    with pytest.raises(ConfigError, match="train.placement_cut must be auto, kmeans or ward"):
        cfg.validate()


def test_central_members_keep_each_parts_inner_fraction():
    import numpy as np

    from nebula.latent.placement import central_members

    # two parts on a line with centres 1 and 9: ratios (own / other centre distance) 0.2, 0.11, 0, 0.6
    # for part 0 and 0, 0.11, 0.2, 0.6 for part 1; the half with the smallest ratios is kept
    emb = np.array([[-1.0, 0], [0, 0], [1, 0], [4, 0], [9, 0], [10, 0], [11, 0], [6, 0]])
    parts = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    keep = central_members(emb, parts, 0.5)
    assert keep.tolist() == [False, True, True, False, True, True, False, False]
    assert central_members(emb, parts, 1.0).all()
    assert central_members(emb, parts, 0.01).sum() == 2  # at least one member of every part


def test_partition_keep_leaves_border_samples_without_a_target():
    x, mu, part = blobs()
    _, how, parts = place_anchors_with_parts("tsne", mu, 3, torch.Generator().manual_seed(0), x, "input", keep=0.6)
    assert how.endswith("the central 60% of each part as targets")
    assert (parts >= 0).sum() == 3 * 36 and purity(parts[parts >= 0], part[parts >= 0]) == 1.0
