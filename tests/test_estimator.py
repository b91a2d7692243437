from __future__ import annotations

import numpy as np
import pytest
from sklearn.utils.estimator_checks import check_estimator

from nebula import NebulaEmbedding


def test_passes_scikit_learn_estimator_checks():
    results = check_estimator(NebulaEmbedding(epochs=2, pretrain_epochs=1, n_anchors=3, latent_dim=2), on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"]
    assert not failed, failed


def test_fit_transform_predict_on_images(tiny_images):
    x, y = tiny_images
    est = NebulaEmbedding(variant="tvae", n_anchors=3, latent_dim=4, epochs=4, pretrain_epochs=1, batch_size=32, random_state=0)
    assert est.fit(x) is est
    z = est.transform(x)
    assert z.shape == (60, 4) and np.isfinite(z).all()
    assert est.labels_.shape == (60,) and est.anchors_.shape == (3, 4)
    np.testing.assert_array_equal(est.predict(x), est.labels_)
    assert est.get_params()["n_anchors"] == 3
    est.set_params(n_anchors=2)
    assert est.n_anchors == 2
    with pytest.raises(ValueError, match="expected"):
        est.transform(np.zeros((2, 5, 5)))


def test_same_seed_same_embedding(tiny_images):
    x, _ = tiny_images
    a = NebulaEmbedding(variant="vae", epochs=2, pretrain_epochs=0, latent_dim=3, random_state=1).fit(x).transform(x)
    b = NebulaEmbedding(variant="vae", epochs=2, pretrain_epochs=0, latent_dim=3, random_state=1).fit(x).transform(x)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
