"""The t-SNE map memo: a hit returns what the computation returns, keys follow content, folders are shared."""

from __future__ import annotations

import numpy as np
import torch

from nebula.latent import mapcache
from nebula.latent.placement import tsne_map


def _points(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(3, 6, generator=g) * 6
    return torch.cat([c + torch.randn(40, 6, generator=g) for c in centres])


def test_key_follows_content_and_parameters() -> None:
    a = np.arange(12.0).reshape(6, 2)
    b = a.copy()
    b[0, 0] += 1e-9
    assert mapcache.map_key(a, seed=1) == mapcache.map_key(a.copy(), seed=1)
    assert mapcache.map_key(a, seed=1) != mapcache.map_key(b, seed=1)
    assert mapcache.map_key(a, seed=1) != mapcache.map_key(a, seed=2)
    assert mapcache.map_key(a, seed=1) != mapcache.map_key(a.reshape(3, 4), seed=1)


def test_hit_equals_computation(monkeypatch) -> None:
    x = _points()
    first = tsne_map(x, 3, seed=5)
    monkeypatch.setattr(mapcache, "_memory", type(mapcache._memory)())
    fresh = tsne_map(x, 3, seed=5)  # computed again: t-SNE is deterministic given data and seed
    np.testing.assert_array_equal(first, fresh)
    calls = []
    import sklearn.manifold

    real = sklearn.manifold.TSNE.fit_transform
    monkeypatch.setattr(sklearn.manifold.TSNE, "fit_transform",
                        lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    again = tsne_map(x, 3, seed=5)
    assert calls == [] and np.array_equal(again, first)
    again[0, 0] = 1e9  # the caller's copy, not the memo's
    assert tsne_map(x, 3, seed=5)[0, 0] == first[0, 0]
    tsne_map(x, 3, seed=6)
    assert calls == [1]


def test_shared_folder_between_processes(tmp_path, monkeypatch) -> None:
    emb = np.random.default_rng(0).normal(size=(10, 2))
    with mapcache.shared(tmp_path):
        mapcache.store("k1", emb)
    assert [p.name for p in tmp_path.iterdir()] == ["k1.npy"]  # no temporary file left
    monkeypatch.setattr(mapcache, "_memory", type(mapcache._memory)())  # another process: empty memory
    assert mapcache.lookup("k1") is None  # outside the block the folder is not read
    with mapcache.shared(tmp_path):
        np.testing.assert_array_equal(mapcache.lookup("k1"), emb)
        assert mapcache.lookup("absent") is None


def test_memory_is_bounded(monkeypatch) -> None:
    monkeypatch.setattr(mapcache, "_memory", type(mapcache._memory)())
    monkeypatch.setattr(mapcache, "MEMORY_MAPS", 3)
    for k in range(5):
        mapcache.store(f"k{k}", np.zeros((2, 2)))
    assert list(mapcache._memory) == ["k2", "k3", "k4"]
