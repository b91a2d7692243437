"""Two CPU processes with gloo (the torchrun code path): after training both ranks hold identical
parameters, and a step's gathered losses and averaged gradients equal the single-process computation on
the same global batch."""

from __future__ import annotations

import json
import socket
import time

import pytest
import torch
import torch.multiprocessing as mp

from nebula.run import build_model
from nebula.train import checkpoint as ckpt
from nebula.train.contract import StepInfo
from nebula.train.distributed import shard_batch

from .dist_worker import equivalence_config, global_batch, worker
from .helpers import tiny_dataset


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(world: int, out, timeout: float = 300.0) -> None:
    """Start ``world`` workers; forked (the test process's imports are reused: seconds instead of a fresh
    interpreter each) where the platform allows, each worker setting one intra-op thread first."""
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    ctx = mp.start_processes(worker, args=(world, _free_port(), str(out)), nprocs=world, join=False, start_method=method)
    deadline = time.time() + timeout
    try:
        while not ctx.join(timeout=1.0):
            if time.time() > deadline:
                raise TimeoutError(f"distributed workers still running after {timeout} s")
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()


def test_shard_batch_is_an_equal_partition():
    index = torch.arange(11)
    shards = [shard_batch(index, r, 3) for r in range(3)]
    assert [len(s) for s in shards] == [3, 3, 3]
    assert sorted(torch.cat(shards).tolist()) == list(range(9))


def test_two_gloo_processes_match_single_process(tmp_path):
    _spawn(2, tmp_path)
    steps = [torch.load(tmp_path / f"step-{r}.pt", weights_only=True) for r in range(2)]
    assert torch.equal(torch.sort(torch.cat([s["shard"] for s in steps])).values, torch.sort(global_batch()).values)

    # single process, same initial weights, the whole global batch
    ds = tiny_dataset()
    torch.manual_seed(0)
    model = build_model(equivalence_config(), ds)
    index = global_batch()
    out = model({"x": ds.x[index], "index": index}, StepInfo())
    out.loss.backward()
    # batch-level terms are computed on the gathered batch: identical on both ranks and equal to single
    for name in ("near", "metric"):
        for s in steps:
            torch.testing.assert_close(s["terms"][name], out.terms[name], rtol=1e-5, atol=1e-6)
    # per-sample terms are shard means: their average over the (equal-size) shards is the global mean
    torch.testing.assert_close((steps[0]["loss"] + steps[1]["loss"]) / 2, out.loss.detach(), rtol=1e-5, atol=1e-6)
    # DDP's averaged gradient equals the single-process large-batch gradient
    for name, p in model.named_parameters():
        if p.grad is None:
            continue
        for s in steps:
            torch.testing.assert_close(s["grads"][name], p.grad, rtol=1e-4, atol=1e-6)

    # after training, both ranks hold the same parameters and buffers; only rank 0 wrote the folder
    p0, p1 = (torch.load(tmp_path / f"params-{r}.pt", weights_only=True) for r in range(2))
    assert p0.keys() == p1.keys()
    for k in p0:
        assert torch.equal(p0[k], p1[k]), k
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["status"] == "complete" and info["distributed"] == {"world_size": 2, "backend": "gloo"}
    assert len(ckpt.list_checkpoints(tmp_path / "run")) == 2
    assert (tmp_path / "run" / "metrics.csv").read_text().count("\n") == 4


@pytest.mark.slow
def test_torchrun_cli(tmp_path):
    """`torchrun --nproc_per_node=2 -m nebula train ...` end to end (the launcher itself)."""
    import os
    import subprocess
    import sys

    import numpy as np

    from .helpers import tiny_images

    x, y = tiny_images(80)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port", str(_free_port()),
           "-m", "nebula", "train", "--data", str(tmp_path / "d.npz"), "-v", "-m", "-r", "-1", "--anchors", "3",
           "--latent-dim", "3", "--epochs", "3", "--batch-size", "16", "--set", "train.pretrain_epochs=1",
           "--set", "model.hidden=[32]", "--set", "train.figures=false", "--device", "cpu", "--quiet", "-o", str(run)]
    res = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "complete" and info["distributed"]["world_size"] == 2
    # the anchors were placed once, by rank 0 (then broadcast)
    state = torch.load(run / "checkpoints" / "ckpt-0003-000000" / "state.pt", weights_only=True)
    assert state["messages"] == ["anchors placed at epoch 1: k-means on 64 training latents"], state["messages"]
    # resume under torchrun continues from the checkpoints: the finished 3-epoch run is extended to 4 epochs
    res = subprocess.run([*cmd[:cmd.index("train") + 1], "--resume", str(run), "--epochs", "4"],
                         env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0 and "resumed from ckpt-0003-000000" in res.stderr, res.stderr[-3000:]
    assert (run / "metrics.csv").read_text().count("\n") == 5
