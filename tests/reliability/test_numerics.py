"""Numerical faults stop the run with a message naming the term (or parameter) and the step, keeping the
last good checkpoint; gradient clipping; deterministic mode gives identical embeddings.npz on CPU."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from nebula.cli import main
from nebula.nvc.model import NebulaCoder
from nebula.run import train
from nebula.train import checkpoint as ckpt
from nebula.train.contract import ModelOutput
from nebula.train.trainer import NonFiniteLoss, Trainer

from .helpers import tiny_config, tiny_dataset, tiny_images


class Scripted(nn.Module):
    """A linear model whose 'boom' term (or gradient) turns NaN/inf at a chosen (epoch, step)."""

    def __init__(self, at: tuple[int, int], kind: str) -> None:
        super().__init__()
        self.lin = nn.Linear(64, 2)
        self.at, self.kind = at, kind

    def forward(self, batch, info):
        z = self.lin(batch["x"].flatten(1))
        rec = z.pow(2).mean()
        boom = z.abs().mean() * 0
        if (info.epoch, info.step) == self.at:
            if self.kind == "loss":
                boom = boom + float("nan")
            else:  # finite loss, infinite gradient: d sqrt(u)/du at u = 0
                boom = torch.sqrt(self.lin.bias.sum() * 0)
        return ModelOutput(loss=rec + boom, terms={"rec": rec, "boom": boom})

    def embed(self, x):
        return self.lin(x.flatten(1))


@pytest.mark.parametrize("kind, step, names", [("loss", 1, "loss term(s) boom"), ("grad", 1, "gradient of lin.bias"),
                                                ("grad", 2, "gradient of lin.bias")])  # step 2: the epoch's last
def test_non_finite_stops_with_term_and_step(tmp_path, kind, step, names):
    cfg = tiny_config(tmp_path, epochs=5)
    cfg.train.batch_size = 16  # 48 training samples: 3 steps per epoch
    trainer = Trainer(Scripted((2, step), kind), tiny_dataset(), cfg, tmp_path, log=lambda m: None)
    with pytest.raises(NonFiniteLoss) as info:
        trainer.fit()
    msg = str(info.value)
    assert names in msg and f"epoch 3, step {step + 1}" in msg and "ckpt-0002-000000 is kept" in msg, msg
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["ckpt-0001-000000", "ckpt-0002-000000"]
    state = torch.load(ckpt.list_checkpoints(tmp_path)[-1] / "state.pt", weights_only=True)
    assert all(np.isfinite(r["loss"]) for r in state["history"]) and len(state["history"]) == 2


def test_nan_through_the_cli_marks_the_run_failed(tmp_path, monkeypatch, capsys):
    original = NebulaCoder.forward

    def forward(self, batch, info=None):
        out = original(self, batch, info)
        if info is not None and (info.epoch, info.step) == (1, 2):
            out.terms["kl"] = out.terms["kl"] * float("inf")
            out.loss = out.loss + out.terms["kl"]
        return out

    monkeypatch.setattr(NebulaCoder, "forward", forward)
    x, y = tiny_images(60)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    run = tmp_path / "run"
    code = main(["train", "--data", str(tmp_path / "d.npz"), "-v", "-o", str(run), "--epochs", "3", "--batch-size", "16",
                 "--latent-dim", "2", "--set", "model.hidden=[16]", "--set", "train.figures=false",
                 "--set", "train.checkpoint_seconds=0", "--device", "cpu", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "loss term(s) kl became non-finite at epoch 2, step 3" in err and "ckpt-0001-000000 is kept" in err
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "failed" and "kl" in info["error"]
    assert not (run / "embeddings.npz").exists() and not (run / "model.safetensors").exists()


def test_gradient_clipping_bounds_the_update(tmp_path):
    cfg = tiny_config(None, epochs=1)
    cfg.train.grad_clip = 1e-3
    cfg.train.lr_schedule = "constant"
    model = Scripted((-1, -1), "loss")
    trainer = Trainer(model, tiny_dataset(), cfg, None, log=lambda m: None)
    norms = []
    original = torch.nn.utils.clip_grad_norm_

    def spy(params, max_norm, *a, **k):
        total = original(params, max_norm, *a, **k)
        norms.append(float(torch.nn.utils.get_total_norm([p.grad for p in params])))
        return total

    torch.nn.utils.clip_grad_norm_ = spy
    try:
        trainer.fit()
    finally:
        torch.nn.utils.clip_grad_norm_ = original
    assert norms and max(norms) <= 1e-3 * (1 + 1e-4)


@pytest.fixture
def restore_determinism():
    before = torch.are_deterministic_algorithms_enabled()
    yield
    torch.use_deterministic_algorithms(before)


def test_deterministic_mode_gives_identical_embeddings(tmp_path, restore_determinism):
    x, y = tiny_images(60)
    np.savez(tmp_path / "d.npz", x=x, y=y)

    def run(name: str, seed: int):
        cfg = tiny_config(tmp_path / name, epochs=2, deterministic=True, seed=seed)
        cfg.data.source = str(tmp_path / "d.npz")
        cfg.model.variational = True
        train(cfg)
        with np.load(tmp_path / name / "embeddings.npz") as f:
            return {k: f[k] for k in f.files}

    a, b, c = run("a", 0), run("b", 0), run("c", 1)
    assert a.keys() == b.keys() and {"z", "assign", "anchors", "rec"} <= set(a)
    for k in a:
        assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k
    assert not np.array_equal(a["z"], c["z"])


def test_bf16_autocast_option_trains(tmp_path):
    """train.precision=bf16 runs the forward under bf16 autocast (meant for GPUs; CPU autocast here):
    finite losses, float32 master weights."""
    cfg = tiny_config(None, epochs=2, precision="bf16")
    model = NebulaCoder.from_config(cfg, (1, 8, 8), (1, 8, 8))
    trainer = Trainer(model, tiny_dataset(), cfg, None, log=lambda m: None)
    seen = []
    original = model.encoder.forward

    def spy(x):
        out = original(x)
        seen.append(out.dtype)
        return out

    model.encoder.forward = spy
    history = trainer.fit()
    assert torch.bfloat16 in seen
    assert all(np.isfinite(r["loss"]) for r in history.rows)
    assert all(p.dtype == torch.float32 for p in model.parameters())
