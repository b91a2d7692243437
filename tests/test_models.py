"""Every registered image encoder/decoder family and variant: forward, backward, finite, eval = mu."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from nebula.config import VARIANTS, Config
from nebula.nvc.callbacks import AnchorPlacement, NeighbourViews
from nebula.nvc.model import NebulaCoder
from nebula.train.contract import StepInfo


@pytest.mark.parametrize("arch", ["mlp", "conv", "fire"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_forward_backward(arch, variant):
    cfg = Config().apply_variant(variant)
    cfg.model.arch, cfg.model.num_anchors, cfg.model.latent_dim, cfg.model.channels = arch, 3, 4, [8, 16]
    cfg.train.pretrain_epochs = 0
    cfg.model.condition_decoder = variant == "tvae"
    model = NebulaCoder.from_config(cfg, (1, 12, 12), (1, 12, 12))
    x = torch.rand(16, 1, 12, 12)
    out = model({"x": x}, StepInfo(epoch=0, step=0, steps_per_epoch=1))
    assert torch.isfinite(out.loss)
    out.loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert out.output.shape == x.shape
    expected_terms = {"rec"} | ({"kl"} if cfg.model.variational else set()) | ({"near"} if cfg.model.use_anchors else set())
    assert expected_terms <= set(out.terms)
    model.eval()
    z, mu, _ = model.encode(x)
    assert torch.equal(z, mu)  # no sampling at evaluation (bug R1)


def test_anchor_terms_wait_for_pretraining_then_kmeans_places_anchors():
    cfg = Config().apply_variant("tvae")
    cfg.model.num_anchors, cfg.model.latent_dim, cfg.train.pretrain_epochs = 3, 2, 2
    model = NebulaCoder.from_config(cfg, (1, 8, 8), (1, 8, 8))
    out = model({"x": torch.rand(8, 1, 8, 8)})
    assert "near" not in out.terms
    mu = torch.cat([torch.randn(20, 2) * 0.1 + c for c in (torch.tensor([5.0, 0]), torch.tensor([0, 5.0]), torch.tensor([-5.0, -5]))])
    placement = next(c for c in model.callbacks() if isinstance(c, AnchorPlacement))
    logged = []
    trainer = SimpleNamespace(model=model, rank=0, world_size=1, device=torch.device("cpu"), embed=lambda index: mu,
                              train_index=torch.arange(len(mu)), x=torch.zeros(len(mu), 1, 8, 8),
                              generator=torch.Generator().manual_seed(0), log=logged.append,
                              history=SimpleNamespace(messages=[]))
    placement.on_epoch_start(trainer, 1, resumed=False)
    assert not logged and not bool(model.anchors_ready)
    placement.on_epoch_start(trainer, 2, resumed=False)
    assert logged == trainer.history.messages and "anchors placed at epoch 2" in logged[0]
    centres = sorted(model.anchors.anchors.detach().round().tolist())
    assert centres == [[-5.0, -5.0], [0.0, 5.0], [5.0, 0.0]]
    assert "near" in model({"x": torch.rand(8, 1, 8, 8)}).terms


def test_gravitation_and_supervised_metric():
    cfg = Config().apply_variant("nvc-ml")
    cfg.loss.anchor_loss, cfg.loss.supervised, cfg.train.pretrain_epochs = "both", True, 0
    cfg.model.num_anchors, cfg.model.latent_dim = 3, 2
    model = NebulaCoder.from_config(cfg, (1, 8, 8), (1, 8, 8))
    out = model({"x": torch.rand(12, 1, 8, 8), "y": torch.arange(12) % 3})
    assert {"near", "neb", "metric"} <= set(out.terms)
    out.loss.backward()
    assert torch.isfinite(model.anchors.anchors.grad).all()


def test_too_small_images_for_conv_stack():
    from nebula.errors import ConfigError

    cfg = Config()
    cfg.model.arch, cfg.model.channels = "conv", [8, 8, 8, 8, 8]
    with pytest.raises(ConfigError, match="too small"):
        NebulaCoder.from_config(cfg, (1, 8, 8), (1, 8, 8))



def test_anchor_prior_centres_the_kl_on_the_nearest_anchor():
    cfg = Config().apply_variant("tvae")
    cfg.model.num_anchors, cfg.model.latent_dim, cfg.train.pretrain_epochs = 3, 2, 0
    cfg.loss.prior = "anchors"
    model = NebulaCoder.from_config(cfg, (1, 8, 8), (1, 8, 8)).eval()
    x = torch.rand(3, 1, 8, 8).repeat(2, 1, 1, 1)
    _, mu, log_sigma = model.encode(x)
    with torch.no_grad():  # every posterior mean sits exactly on its own anchor, away from the origin
        model.anchors.anchors.copy_(mu[:3] + 3.0)
    mu = mu + 0.0
    model.head.mu.bias.data += 3.0
    out = model({"x": x})
    # KL(N(a_c, sigma^2) || N(a_c, I)) has no mean term
    expected = (-0.5 * (1 + 2 * log_sigma - torch.exp(2 * log_sigma))).sum(1).mean()
    torch.testing.assert_close(out.terms["kl"], expected)
    cfg.loss.prior = "standard"
    standard = model({"x": x}).terms["kl"]
    torch.testing.assert_close(standard, expected + 0.5 * (mu + 3.0).pow(2).sum(1).mean())


def test_neighbour_batches_join_the_anchor_terms_as_a_view():
    cfg = Config().apply_variant("tvae")
    cfg.model.num_anchors, cfg.model.latent_dim, cfg.train.pretrain_epochs = 3, 2, 0
    cfg.loss.neighbours, cfg.data.augment = 5, {}
    model = NebulaCoder.from_config(cfg, (1, 8, 8), (1, 8, 8))
    views = [c for c in model.callbacks() if isinstance(c, NeighbourViews)]
    assert [(c.k, c.space) for c in views] == [(5, "latent")]
    x = torch.rand(8, 1, 8, 8)
    plain = model({"x": x}).terms["near"]
    with_self = model({"x": x, "x_nb": x}).terms["near"]  # a neighbour identical to the sample changes nothing
    torch.testing.assert_close(plain, with_self)
    assert model.anchors._last[0].shape == (16, 2)
    cfg.loss.neighbours = 0
    assert not any(isinstance(c, NeighbourViews) for c in model.callbacks())
