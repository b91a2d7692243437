"""Worker of the 2-process gloo test (a module, so spawned processes can import it)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from nebula.config import Config

from .helpers import tiny_config, tiny_dataset


def equivalence_config() -> Config:
    """Deterministic latents (AE), anchors + ratio-triplet metric on the gathered batch, no batch norm,
    no augmentation: a 2-process step must equal the single-process step on the same global batch."""
    cfg = tiny_config(None, epochs=1)
    cfg.model.variational = False
    cfg.model.batch_norm = False
    cfg.data.augment = {}
    cfg.train.pretrain_epochs = 0
    return cfg


def global_batch() -> torch.Tensor:
    return torch.arange(0, 32, 2)


def worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from nebula.run import build_model, train
    from nebula.train import distributed
    from nebula.train.contract import StepInfo

    ctx, device = distributed.setup(torch.device("cpu"), timeout_s=120)
    try:
        # 1. one step on the shards of a fixed global batch, latents gathered with gradient
        ds = tiny_dataset()
        cfg = equivalence_config()
        torch.manual_seed(0)
        model = build_model(cfg, ds)
        ddp = distributed.wrap_model(model, ctx, device)
        index = distributed.shard_batch(global_batch(), ctx.rank, ctx.world_size)
        out_ = ddp({"x": ds.x[index], "index": index}, StepInfo())
        out_.loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        torch.save({"loss": out_.loss.detach(), "terms": {k: v.detach() for k, v in out_.terms.items()},
                    "grads": grads, "shard": index}, Path(out) / f"step-{rank}.pt")
        # 2. a short training run through nebula.run.train (rank 0 writes the run folder)
        cfg = tiny_config(Path(out) / "run", epochs=3)
        cfg.model.variational = True
        cfg.train.checkpoint_every, cfg.train.checkpoint_seconds = 1, 0.0  # a checkpoint per epoch
        run = train(cfg, dataset=tiny_dataset())
        torch.save({k: v.detach().clone() for k, v in run.model.state_dict().items()}, Path(out) / f"params-{rank}.pt")
    finally:
        distributed.teardown(ctx)
