"""ContrastiveLearner: every method forward/backward, feature augmentations, end-to-end training and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from nebula.config import Config
from nebula.contrastive.augment import TwoViewAugment
from nebula.contrastive.backbones import build_backbone
from nebula.contrastive.fewshot import fewshot_probe
from nebula.contrastive.heads import build_head
from nebula.contrastive.learner import METHODS, ContrastiveLearner
from nebula.errors import ConfigError
from nebula.methods import METHODS as MODELS
from nebula.train.contract import StepInfo


def _cfg(method: str, **contrastive) -> Config:
    cfg = Config(method=method)
    cfg.contrastive.channels = [8, 16]
    cfg.contrastive.proj_dim = 8
    cfg.contrastive.direct_dim = 8
    cfg.contrastive.block_size = 4
    cfg.contrastive.num_operators = 3
    cfg.contrastive.prior_warmup = 2
    for k, v in contrastive.items():
        setattr(cfg.contrastive, k, v)
    return cfg


def test_every_method_is_registered():
    assert set(METHODS) <= set(MODELS)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("head", ["mlp", "none"])
def test_forward_backward_every_method(method, head):
    torch.manual_seed(0)
    model = ContrastiveLearner(_cfg(method, head=head), (1, 8, 8), method)
    x = torch.rand(12, 1, 8, 8)
    out = model({"x": x}, StepInfo(epoch=0, step=5, steps_per_epoch=3))
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert "clr" in out.terms
    if method in ("manifoldclr", "directclr"):
        assert {"transport", "kl", "active"} <= set(out.terms)
    out.loss.backward()
    grads = [p.grad for p in model.backbone.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    if model.lie is not None:
        assert model.lie.operators.psi.grad is not None
    model.eval()
    emb = model.embedding_batch(x, x)
    assert emb["z"].shape == (12, 16) and (emb["assign"] == -1).all()


def test_directclr_operators_act_on_first_dims_only():
    model = ContrastiveLearner(_cfg("directclr"), (1, 8, 8), "directclr")
    assert model.architecture["head"] == "direct" and model.lie.op_dim == 8
    z = torch.randn(5, 16)
    moved = model.lie.transport(z, torch.randn(5, 3))
    torch.testing.assert_close(moved[:, 8:], z[:, 8:])


def test_noise_baseline_draws_independent_noise_per_sample_and_dim():
    cfg = _cfg("noise", noise_std=1.0)
    model = ContrastiveLearner(cfg, (1, 8, 8), "noise")
    z = torch.zeros(64, 16)
    aug, _ = model.feature_augment(z, z, step=0)
    noise = aug - z
    # bug M1: noise shared along an axis; here every entry is its own draw
    assert noise.std(0).min() > 0.5 and noise.std(1).min() > 0.5
    assert torch.unique(noise).numel() == noise.numel()


def test_mixup_interpolates_between_views():
    model = ContrastiveLearner(_cfg("mixup", mixup_max=0.5), (1, 8, 8), "mixup")
    z0, z1 = torch.zeros(32, 16), torch.ones(32, 16)
    aug, _ = model.feature_augment(z0, z1, step=0)
    m = aug[:, 0]
    assert (aug == m[:, None]).all() and m.min() >= 0 and m.max() <= 0.5 and m.std() > 0


def test_param_groups_give_operators_their_own_settings():
    cfg = _cfg("manifoldclr", operator_lr=1e-3, operator_wd=1e-3)
    model = ContrastiveLearner(cfg, (1, 8, 8), "manifoldclr")
    groups = {g["name"]: g for g in model.param_groups(2e-3, 1e-4)}
    assert groups["operators"]["lr"] == 1e-3 and groups["operators"]["weight_decay"] == 1e-3
    assert groups["operators"]["params"] == [model.lie.operators.psi]
    assert groups["network"]["lr"] == 2e-3
    n_params = sum(len(g["params"]) for g in groups.values())
    assert n_params == len(list(model.parameters()))


def test_augment_is_seeded_and_views_differ():
    aug = TwoViewAugment((1, 8, 8))
    x = torch.rand(10, 1, 8, 8)
    a0, a1 = aug(x, torch.Generator().manual_seed(3))
    b0, b1 = aug(x, torch.Generator().manual_seed(3))
    torch.testing.assert_close(a0, b0)
    torch.testing.assert_close(a1, b1)
    assert not torch.allclose(a0, a1)
    assert a0.min() >= 0 and a0.max() <= 1
    colour = TwoViewAugment((3, 8, 8))
    c0, _ = colour(torch.rand(4, 3, 8, 8), torch.Generator().manual_seed(0))
    assert c0.shape == (4, 3, 8, 8)


def test_backbones_and_heads_shapes():
    net = build_backbone("resnet18", (3, 8, 8), [])
    assert net(torch.rand(2, 3, 8, 8)).shape == (2, 512)
    cnn = build_backbone("cnn", (1, 16, 16), [8, 16, 32])
    assert cnn(torch.rand(3, 1, 16, 16)).shape == (3, 32)
    for name, width in (("mlp", 8), ("linear", 8), ("none", 32), ("direct", 4)):
        head = build_head(name, 32, 8, 4)
        assert head(torch.rand(3, 32)).shape == (3, width)
    with pytest.raises(ConfigError, match="backbone"):
        build_backbone("vgg", (1, 8, 8), [8])
    with pytest.raises(ConfigError, match="head"):
        build_head("deep", 8)


def test_fewshot_probe_on_separable_features():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 6)) * 4
    y = np.repeat(np.arange(3), 40)
    z = centres[y] + rng.normal(size=(120, 6))
    tr = np.arange(120) % 4 != 0

    def augment(v: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        return v + 0.1 * torch.randn(v.shape, generator=g)

    out = fewshot_probe(z[tr], y[tr], z[~tr], y[~tr], augment, labels_per_class=2, trials=3, steps=50)
    assert len(out["fewshot_none_accuracy"]) == 3 and len(out["fewshot_operators_accuracy"]) == 3
    assert out["fewshot_none_mean"] > 0.8 and out["fewshot_operators_mean"] > 0.8
    diff = np.array(out["fewshot_operators_accuracy"]) - np.array(out["fewshot_none_accuracy"])
    assert out["fewshot_gain_mean"] == pytest.approx(diff.mean())
    assert out["fewshot_gain_se"] == pytest.approx(diff.std(ddof=1) / np.sqrt(3))


@pytest.fixture
def tiny_npz(tmp_path, tiny_images):
    x, y = tiny_images
    split = (np.arange(len(y)) % 5 == 0).astype(np.int8)
    path = tmp_path / "tiny.npz"
    np.savez(path, x=x, y=y, split=split)
    return path


def test_train_end_to_end_through_nebula_train(tmp_path, tiny_npz):
    from nebula.evaluate.contrastive import evaluate_contrastive
    from nebula.run import load, train

    cfg = _cfg("manifoldclr")
    cfg.data.source = str(tiny_npz)
    cfg.output = str(tmp_path / "run")
    cfg.train.epochs = 2
    cfg.train.batch_size = 16
    cfg.train.quiet = True
    cfg.train.figures = False
    cfg.contrastive.fewshot_trials = 1
    run = train(cfg)
    assert run.embeddings["z"].shape == (60, 16)
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert len(rows) == 3 and "transport" in rows[0]
    loaded = load(tmp_path / "run")
    assert isinstance(loaded.model, ContrastiveLearner)
    torch.testing.assert_close(loaded.model.embed(run.dataset.x[:4]), run.model.eval().embed(run.dataset.x[:4]))
    metrics = evaluate_contrastive(run, run.dataset)
    for key in ("transport_ratio", "active_coefficients", "fewshot_gain_mean", "fewshot_gain_se"):
        assert key in metrics
    assert not {"linear_probe_accuracy", "knn_cosine_k5_accuracy", "kmeans_purity"} & set(metrics)  # eval.json's probes
    assert (tmp_path / "run" / "contrastive_eval.npz").exists()
    assert (tmp_path / "run" / "figures" / "operator_orbits.png").exists()
    assert (tmp_path / "run" / "figures" / "coefficient_usage.png").exists()


def test_cli_compares_methods(tmp_path, tiny_npz, capsys):
    from nebula.cli import main

    out = tmp_path / "cmp"
    code = main(["contrastive", "--data", str(tiny_npz), "--method", "simclr,noise", "--head", "linear", "-o", str(out),
                 "--epochs", "1", "--batch-size", "16", "--quiet", "--set", "contrastive.channels=[8,16]",
                 "--set", "contrastive.fewshot_trials=1", "--set", "train.figures=false"])
    assert code == 0
    table = json.loads((out / "compare.json").read_text())
    assert set(table) == {"simclr", "noise"}
    for method in ("simclr", "noise"):
        ev = json.loads((out / method / "eval.json").read_text())
        plugin = ev["plugins"]["contrastive"]
        assert ev["method"] == method and plugin["method"] == method
        assert 0.0 <= ev["probes"]["linear_probe"] <= 1.0
        assert ev["probes"]["linear_probe"] == table[method]["linear_probe"]
        assert ev["variant"] == method and ev["reconstruction"] is None and ev["anchors"] is None
        assert "fewshot_none_mean" in plugin and "transport_ratio" not in plugin  # no operators in these methods
    assert "| simclr |" in (out / "compare.md").read_text()
    assert main(["contrastive", "--data", str(tiny_npz), "--method", "byol", "-o", str(out)]) == 2
    assert "unknown contrastive method" in capsys.readouterr().err


def test_a_simclr_run_names_no_nvc_variant(tmp_path, tiny_npz):
    from nebula.cli import main

    run = tmp_path / "simclr"
    assert main(["contrastive", "--data", str(tiny_npz), "--method", "simclr", "-o", str(run), "--epochs", "1",
                 "--batch-size", "16", "--quiet", "--set", "contrastive.channels=[8,16]",
                 "--set", "contrastive.fewshot_trials=1", "--set", "train.figures=false"]) == 0
    assert main(["eval", str(run), "--no-data"]) == 0
    info = json.loads((run / "run.json").read_text())
    ev = json.loads((run / "eval.json").read_text())
    assert info["variant"] == info["method"] == ev["variant"] == "simclr"
    saved = (run / "config.yaml").read_text()
    assert "contrastive:" in saved and "\nmodel:" not in saved and "\nloss:" not in saved
    from safetensors import safe_open

    with safe_open(str(run / "model.safetensors"), "pt") as f:
        assert f.metadata()["variant"] == "simclr"
    for text in (json.dumps(info), json.dumps(ev), (run / "report.html").read_text()):
        assert not any(v in text for v in ('"tvae"', ">tvae<", "nvc-ml", '"custom"'))
