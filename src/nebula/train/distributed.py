"""Multi-process training through PyTorch's own engine (``torchrun``, DistributedDataParallel).

``torchrun --nproc_per_node=N -m nebula train ...`` (and multi-node with the usual ``--nnodes``,
``--node_rank``, ``--rdzv_endpoint`` flags) sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``,
``MASTER_ADDR`` and ``MASTER_PORT``; :func:`setup` reads them and joins the process group (gloo on CPU,
nccl on GPU, one GPU per process: ``cuda:LOCAL_RANK``).

How one distributed step matches the single-process large-batch step:

* every rank holds the whole dataset in memory and draws the same seeded permutation per epoch, so
  the *global* batches B_1, B_2, ... are the ones a single process uses; rank r takes the strided
  shard ``B[r::W]`` of each (:func:`shard_batch`, the DistributedSampler rule applied to index
  batches), trimmed to a multiple of W so every rank has the same shard size;
* latents (and labels) are all-gathered *with gradient* (:func:`all_gather_with_grad`) before the
  anchor, metric and contrastive terms, so these terms are computed on the global batch (N_global, d);
  the backward of the gather sums the gradient of every rank's copy into the owner's shard, and
  DDP's gradient average (1/W) then gives exactly dL_global/dtheta;
* per-sample terms (reconstruction, KL) are means over the local shard; DDP's average of W equal-size
  shard means is the global mean.

Batch norm uses per-shard statistics on CPU (PyTorch's SyncBatchNorm runs on GPUs only); on GPUs the
model is converted to SyncBatchNorm so the statistics are those of the global batch too.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from nebula.errors import NebulaError


@dataclass(frozen=True)
class DistContext:
    """Where this process is: ``rank`` of ``world_size`` processes, ``local_rank`` on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1 or self.backend is not None

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes the run folder."""
        return self.rank == 0


SINGLE = DistContext()


def launched_by_torchrun() -> bool:
    """True when the torchrun environment variables are present."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


def setup(device: torch.device, timeout_s: float = 1800.0) -> tuple[DistContext, torch.device]:
    """Join the process group described by torchrun's environment (no-op without it).

    Args:
        device: the device the configuration asks for (cpu or cuda); under torchrun a cuda device
            becomes ``cuda:LOCAL_RANK``.
    Returns:
        (context, device to train on).
    """
    if dist.is_available() and dist.is_initialized():
        backend = dist.get_backend()
        local = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
        if device.type == "cuda":
            device = torch.device("cuda", local)
        return DistContext(dist.get_rank(), dist.get_world_size(), local, backend, owns_group=False), device
    if not launched_by_torchrun():
        return SINGLE, device
    if not dist.is_available():
        raise NebulaError("torchrun launched this process but this PyTorch build has no torch.distributed")
    rank, world, local = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"])
    if device.type == "cuda":
        if local >= torch.cuda.device_count():
            raise NebulaError(f"LOCAL_RANK {local} but only {torch.cuda.device_count()} GPU(s) on this node "
                              "(expected --nproc_per_node <= number of GPUs)")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=timeout_s))
    return DistContext(rank, world, local, backend, owns_group=True), device


def teardown(ctx: DistContext) -> None:
    """Leave the process group if :func:`setup` created it."""
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def shard_batch(index: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """Rank ``rank``'s share of one global index batch: ``index[rank::W]`` after trimming to a multiple of W.

    index: (B,) -> (B // W,). Every rank gets the same number of samples (all-gather needs equal sizes);
    the ``B mod W`` trailing samples of a batch are skipped for this step (they come back in other
    epochs' permutations).
    """
    if world_size == 1:
        return index
    usable = (len(index) // world_size) * world_size
    return index[:usable][rank::world_size]


def all_gather_with_grad(t: torch.Tensor) -> torch.Tensor:
    """(n, ...) on each of W ranks -> (W n, ...) in rank order, differentiable.

    The backward sums the W ranks' gradients of the gathered tensor into each rank's own slice
    (``torch.distributed.nn.functional.all_gather``); integer tensors (labels) are gathered without
    autograd.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return t
    if not t.is_floating_point():
        parts = [torch.empty_like(t) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, t.contiguous())
        return torch.cat(parts)
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(t.contiguous()))


def wrap_model(model: torch.nn.Module, ctx: DistContext, device: torch.device) -> torch.nn.Module:
    """The module whose ``forward`` the trainer calls: ``model`` itself, or a DDP wrapper of it.

    Installs :func:`all_gather_with_grad` as ``model.gather`` (models that gather latents before their
    batch-level terms define that attribute), converts batch norm to SyncBatchNorm on GPUs, and wraps
    in DistributedDataParallel (parameters broadcast from rank 0; ``find_unused_parameters`` because
    anchors are unused until the warm-up ends).
    """
    if not ctx.enabled or not dist.is_initialized():
        return model
    if hasattr(model, "gather"):
        model.gather = all_gather_with_grad
    if device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    device_ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids, find_unused_parameters=True)


def broadcast_module(module: torch.nn.Module, src: int = 0) -> None:
    """Copy every parameter and buffer of rank ``src`` to all ranks (after a hook changed them)."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return
    with torch.no_grad():
        for t in module.state_dict().values():
            if t.dtype == torch.bool:  # not every backend moves bools
                carrier = t.to(torch.uint8)
                dist.broadcast(carrier, src)
                t.copy_(carrier.bool())
            else:
                dist.broadcast(t, src)


def all_gather_tensor(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """(L,) on each rank -> (W, L) on the CPU, rank order (e.g. every rank's RNG state); via ``device``
    because nccl moves only GPU tensors."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return t[None].cpu()
    src = t.to(device) if dist.get_backend() == "nccl" else t.cpu()
    parts = [torch.empty_like(src) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, src.contiguous())
    return torch.stack([p.cpu() for p in parts])


def all_reduce_max(values: torch.Tensor) -> torch.Tensor:
    """Element-wise max over ranks (flags such as "saw a signal", "loss not finite")."""
    if dist.is_initialized() and dist.get_world_size() > 1:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.MAX)
    return values


def all_reduce_mean(values: torch.Tensor) -> torch.Tensor:
    """Mean over ranks (per-epoch loss sums of equal-size shards)."""
    if dist.is_initialized() and dist.get_world_size() > 1:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        values /= dist.get_world_size()
    return values


def barrier() -> None:
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()
