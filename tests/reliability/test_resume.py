"""Checkpoints and resume: exact continuation after SIGINT/SIGTERM (mid-epoch and at an epoch boundary),
fallback from a truncated or corrupt checkpoint, and kill -9 of a real `nebula train` process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from nebula.cli import main
from nebula.config import Config
from nebula.run import train
from nebula.train import checkpoint as ckpt
from nebula.train import trainer as trainer_module
from nebula.train.trainer import Trainer, TrainingInterrupted

from .helpers import tiny_config, tiny_images


@pytest.fixture
def one_thread():
    """Identical thread counts in every compared run (float sums depend on the partition of work)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def data_file(tmp_path) -> Path:
    x, y = tiny_images(60)
    np.savez(tmp_path / "tiny.npz", x=x, y=y)
    return tmp_path / "tiny.npz"


def final_state(run_dir: Path) -> dict:
    """The newest checkpoint's training state (full-precision per-epoch history)."""
    path = ckpt.list_checkpoints(run_dir)[-1]
    return torch.load(path / "state.pt", weights_only=True)


def assert_same_history(a: list[dict], b: list[dict], tol: float = 1e-6) -> None:
    assert len(a) == len(b)
    for ra, rb in zip(a, b):
        assert ra.keys() == rb.keys()
        for k in ra:
            if k != "seconds":
                assert abs(ra[k] - rb[k]) <= tol, (ra["epoch"], k, ra[k], rb[k])


def config(tmp_path: Path, name: str, data_file: Path, epochs: int = 4):
    cfg = tiny_config(tmp_path / name, epochs=epochs)
    cfg.data.source = str(data_file)
    return cfg


def send_signal_at(monkeypatch, call: int, signum: int) -> None:
    """Deliver a real ``signum`` to this process during the ``call``-th training step."""
    original = Trainer.make_batch
    seen = {"n": 0}

    def make_batch(self, index, epoch=0, step=0):
        seen["n"] += 1
        if seen["n"] == call:
            os.kill(os.getpid(), signum)
        return original(self, index, epoch, step)

    monkeypatch.setattr(Trainer, "make_batch", make_batch)


@pytest.mark.parametrize("call, signum, expect, neighbours", [
    (7, signal.SIGINT, "ckpt-0002-000001", 0),   # mid-epoch 3
    (9, signal.SIGTERM, "ckpt-0003-000000", 0),  # last step of epoch 3
    (7, signal.SIGINT, "ckpt-0002-000001", 4),   # mid-epoch, with the neighbour table in the checkpoint
])
def test_interrupted_and_resumed_run_equals_uninterrupted(tmp_path, data_file, monkeypatch, one_thread, call, signum,
                                                          expect, neighbours):
    def config_nb(name):
        cfg = config(tmp_path, name, data_file)
        cfg.loss.neighbours = neighbours
        return cfg

    reference = train(config_nb("a"))
    # 48 training samples, batch 16: 3 steps per epoch
    send_signal_at(monkeypatch, call, signum)
    with pytest.raises(TrainingInterrupted, match=f"interrupted by {signal.Signals(signum).name}"):
        train(config_nb("b"))
    monkeypatch.undo()
    run_b = tmp_path / "b"
    assert ckpt.list_checkpoints(run_b)[-1].name == expect
    info = json.loads((run_b / "run.json").read_text())
    assert info["status"] == "interrupted" and "--resume" in info["error"]
    assert not (run_b / "embeddings.npz").exists()
    resumed = train(config_nb("b"), resume=True)
    assert (final_state(run_b).get("neighbours") is not None) == (neighbours > 0)
    assert_same_history(final_state(tmp_path / "a")["history"], final_state(run_b)["history"])
    info = json.loads((run_b / "run.json").read_text())
    assert info["status"] == "complete"
    # the resumed run's training time covers both sessions (the epochs' own seconds add up to it)
    epoch_seconds = sum(r["seconds"] for r in final_state(run_b)["history"])
    assert info["train_seconds"] > info["session_train_seconds"]
    assert info["train_seconds"] >= epoch_seconds
    np.testing.assert_allclose(resumed.embeddings["z"], reference.embeddings["z"], atol=1e-6)
    assert (run_b / "metrics.csv").read_text().count("\n") == 5
    saved = Config.from_dict(yaml.safe_load(final_state(run_b)["config"]))
    assert saved == Config.from_yaml(run_b / "config.yaml")


def test_cli_interrupt_exits_nonzero_and_resume_continues(tmp_path, data_file, monkeypatch, capsys, one_thread):
    run = tmp_path / "run"
    argv = ["train", "--data", str(data_file), "-o", str(run), "--epochs", "3", "--latent-dim", "2", "-m",
            "--anchors", "3", "--batch-size", "16", "--set", "train.pretrain_epochs=1", "--set", "model.hidden=[16]",
            "--set", "train.figures=false", "--set", "train.checkpoint_seconds=0", "--device", "cpu", "--quiet"]
    send_signal_at(monkeypatch, 4, signal.SIGINT)
    assert main(argv) == 130
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "interrupted by SIGINT during epoch 2" in err and f"--resume {run}" in err
    monkeypatch.undo()
    assert main(argv) == 2  # an unfinished run is not silently replaced
    assert "unfinished run" in capsys.readouterr().err
    assert main(["train", "--resume", str(run)]) == 0
    assert "resumed from ckpt-0001-000001" in capsys.readouterr().err  # notices go to stderr
    assert json.loads((run / "run.json").read_text())["status"] == "complete"


@pytest.mark.parametrize("damage", ["truncate-weights", "corrupt-state", "no-marker"])
def test_corrupt_newest_checkpoint_falls_back_to_previous(tmp_path, data_file, damage, one_thread):
    train(config(tmp_path, "a", data_file))
    reference = final_state(tmp_path / "a")["history"]
    newest = ckpt.list_checkpoints(tmp_path / "a")[-1]
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "a")] == ["ckpt-0003-000000", "ckpt-0004-000000"]
    if damage == "truncate-weights":
        data = (newest / "model.safetensors").read_bytes()
        (newest / "model.safetensors").write_bytes(data[: len(data) // 2])
    elif damage == "corrupt-state":
        (newest / "state.pt").write_bytes(b"\x00garbage" * 10)
    else:
        (newest / "COMPLETE").unlink()
    messages: list[str] = []
    cfg = config(tmp_path, "a", data_file)
    original = Trainer.__init__

    def init(self, *args, **kwargs):
        kwargs["log"] = messages.append
        original(self, *args, **kwargs)

    trainer_module.Trainer.__init__ = init
    try:
        train(cfg, resume=True)
    finally:
        trainer_module.Trainer.__init__ = original
    assert any("ckpt-0004-000000 is unreadable" in m and "falling back" in m for m in messages), messages
    assert any("resumed from ckpt-0003-000000" in m for m in messages), messages
    assert_same_history(reference, final_state(tmp_path / "a")["history"])


def test_atomic_write_leaves_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "f.txt"
    ckpt.atomic_write_text(path, "old")

    def boom(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        ckpt.atomic_write_text(path, "new")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_kill_9_then_resume_loses_at_most_one_interval(tmp_path, data_file, one_thread):
    """A real `nebula train` process is killed with SIGKILL after its second checkpoint; `--resume`
    finishes it with exactly the uninterrupted run's per-epoch losses."""
    epochs = 40
    run = tmp_path / "killed"
    argv = [sys.executable, "-m", "nebula", "train", "--data", str(data_file), "-o", str(run), "--epochs", str(epochs),
            "--latent-dim", "3", "-v", "-m", "-r", "-1", "--anchors", "3", "--batch-size", "16",
            "--set", "train.pretrain_epochs=1", "--set", "model.hidden=[32,16]", "--set", "model.feature_dim=16",
            "--set", "train.figures=false", "--set", "train.checkpoint_seconds=0", "--device", "cpu", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    try:
        while time.time() < deadline and proc.poll() is None and len(ckpt.list_checkpoints(run)) < 2:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    done = int(ckpt.list_checkpoints(run)[-1].name.split("-")[1])
    assert 2 <= done < epochs
    lines = (run / "metrics.csv").read_text().strip().splitlines()
    assert len(lines) - 1 - done in (0, 1)  # at most the epoch after the last checkpoint is lost
    assert json.loads((run / "run.json").read_text())["status"] == "running"

    cfg = tiny_config(tmp_path / "reference", epochs=epochs)
    cfg.data.source = str(data_file)
    cfg.model.variational, cfg.model.use_anchors, cfg.loss.metric_order = True, True, -1
    reference = train(cfg)
    resumed = train(tiny_config(run), resume=True)
    assert_same_history(final_state(tmp_path / "reference")["history"], final_state(run)["history"])
    np.testing.assert_allclose(resumed.embeddings["z"], reference.embeddings["z"], atol=1e-6)


def test_checkpoint_seconds_bounds_periodic_checkpoints(tmp_path, data_file, monkeypatch, one_thread):
    """Before ``train.checkpoint_seconds`` have passed no periodic checkpoint is written, only the final one;
    once they have, the next epoch's end writes one (a fake clock: every training step takes 10 s)."""
    import types

    clock = {"t": 0.0, "steps": 0}
    monkeypatch.setattr(trainer_module, "time", types.SimpleNamespace(monotonic=lambda: clock["t"],
                                                                     perf_counter=time.perf_counter))
    original = Trainer.make_batch

    def make_batch(self, index, epoch=0, step=0):
        clock["t"] += 10.0
        clock["steps"] += 1
        return original(self, index, epoch, step)

    monkeypatch.setattr(Trainer, "make_batch", make_batch)
    written = []
    real = ckpt.save_checkpoint
    monkeypatch.setattr(ckpt, "save_checkpoint", lambda run_dir, epochs_done, *a, **k: written.append(epochs_done)
                        or real(run_dir, epochs_done, *a, **k))
    cfg = config(tmp_path, "bounded", data_file, epochs=4)
    cfg.train.checkpoint_seconds = 1e9
    train(cfg)
    assert written == [4]  # only the end of training
    seconds_per_epoch = 10.0 * clock["steps"] / 4
    written.clear()
    cfg = config(tmp_path, "every-two", data_file, epochs=5)
    cfg.train.checkpoint_seconds = 1.5 * seconds_per_epoch  # elapsed at the end of every second epoch
    train(cfg)
    assert written == [2, 4, 5]
