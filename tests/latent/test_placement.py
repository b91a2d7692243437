"""Anchor placement: k-means, random and t-SNE-of-inputs partitions, fallbacks and bad inputs."""

from __future__ import annotations

import pytest
import torch

from nebula.errors import ConfigError
from nebula.latent.placement import place_anchors
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
