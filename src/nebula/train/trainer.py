"""The one trainer: optimiser, schedule, progress, metrics, checkpoints and the run folder.

It knows nothing of modalities or latent methods: a model is any ``nn.Module`` whose
``forward(batch, info)`` returns an object with ``loss`` (scalar) and ``terms`` (name -> scalar), and
which may define the hooks ``param_groups(lr, wd)``, ``on_epoch_start(epoch, embed_train, generator, train_inputs)``
(run on rank 0 only under torchrun; when it returns a message, every parameter and buffer is broadcast
from rank 0), ``neighbour_views() -> (k, space)`` (batches then carry ``x_nb``, one of each sample's k
nearest training samples) and ``after_step()``.
"""

from __future__ import annotations

import contextlib
import csv
import math
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm.auto import tqdm

from nebula.config import Config
from nebula.data.base import NebulaDataset
from nebula.errors import NebulaError
from nebula.latent.anchors import squared_distances
from nebula.models import StepInfo
from nebula.train import checkpoint as ckpt
from nebula.train import distributed


class TrainingInterrupted(NebulaError):
    """SIGINT/SIGTERM: a checkpoint was written and the run can be resumed."""


class NonFiniteLoss(NebulaError):
    """A loss term or gradient became NaN/inf."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise NebulaError(f"unknown device '{name}' (expected auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise NebulaError(f"device '{name}' requested but CUDA is not available (use --device cpu)")
    return device


@dataclass
class History:
    rows: list[dict[str, float]] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


class RunningSums:
    """Per-epoch sums of the scalar loss terms and the total: each step adds one stacked vector (two tensor
    operations a step whatever the number of terms); a change of the term names starts a new vector. Sums are
    float64, so that the grouping (one vector, or a resumed epoch's saved sums plus the rest) does not
    change the logged means."""

    def __init__(self, start: dict[str, torch.Tensor]) -> None:
        self._totals: dict[str, Any] = dict(start)
        self._keys: tuple[str, ...] | None = None
        self._vec: torch.Tensor | None = None

    def add(self, terms: dict[str, torch.Tensor], loss: torch.Tensor) -> None:
        keys = (*terms, "loss")
        with torch.no_grad():
            vec = torch.stack([*terms.values(), loss]).double()
        if keys == self._keys:
            self._vec.add_(vec)
        else:
            self._fold()
            self._keys, self._vec = keys, vec

    def _fold(self) -> None:
        if self._keys is not None:
            for k, v in zip(self._keys, self._vec):
                self._totals[k] = self._totals.get(k, 0.0) + v
            self._keys = self._vec = None

    def totals(self) -> dict[str, torch.Tensor]:
        """name -> sum so far (0-d tensors)."""
        self._fold()
        return self._totals


class Trainer:
    """Trains ``model`` on the train split (``dataset.split == 0``) of ``dataset``.

    Args:
        model: the model (see module docstring for the contract).
        dataset: in-memory dataset; all tensors are moved to the device once.
        cfg: run configuration (``cfg.train`` is used here).
        run_dir: where metrics and checkpoints go (None: nothing written). Under torchrun every rank
            passes the same folder (it reads checkpoints from it); only rank 0 writes.
        log: function for one-line messages (tqdm-safe).
        dist_ctx: this process's place in a torchrun job (default: single process).
        device: overrides ``cfg.train.device`` (torchrun puts rank r on ``cuda:LOCAL_RANK``).

    Checkpoints hold the weights plus optimiser, scheduler, RNG (torch, numpy, python, the trainer's
    generator; per rank under torchrun) and data-order state; the data order of epoch e is a permutation
    seeded by (seed, e), so a run resumed from a checkpoint taken after s steps of epoch e replays
    exactly the same batches, noise and updates as an uninterrupted run.
    """

    def __init__(self, model: torch.nn.Module, dataset: NebulaDataset, cfg: Config, run_dir: Path | None = None,
                 log: Callable[[str], None] | None = None, dist_ctx: distributed.DistContext | None = None,
                 device: torch.device | None = None) -> None:
        self.cfg, self.tc = cfg, cfg.train
        self.dist = dist_ctx or distributed.SINGLE
        self.rank, self.world_size = self.dist.rank, self.dist.world_size
        self.device = device if device is not None else resolve_device(self.tc.device)
        self.model = model.to(self.device)
        self.dataset = dataset
        self.run_dir = Path(run_dir) if run_dir is not None else None
        quiet = self.tc.quiet or not self.dist.is_main
        self.log = log or (lambda msg: tqdm.write(msg) if not quiet else None)
        # resume and checkpoint-fallback notices are shown even with train.quiet (rank 0 only)
        self.notify = log or (lambda msg: tqdm.write(msg) if self.dist.is_main else None)
        self.source = str(dataset.meta.get("source", dataset.meta.get("name", "dataset")))
        self.x = dataset.x.to(self.device)
        self.target = dataset.target.to(self.device) if dataset.target is not None else None
        self.y = torch.tensor(np.asarray(dataset.y), device=self.device) if dataset.y is not None else None
        self.train_index = torch.from_numpy(np.flatnonzero(dataset.split == 0)).to(self.device)
        if len(self.train_index) == 0:
            raise NebulaError(f"{self.source}: the train split is empty (expected at least 2 training samples)")
        self.generator = torch.Generator().manual_seed(self.tc.seed)
        #: training seconds spent before a resume (finished epochs + the interrupted epoch's part)
        self.resumed_seconds = 0.0
        #: (n_train, k) global indices of each training sample's k nearest training latents (or None)
        self.neighbours: torch.Tensor | None = None
        self._train_row = torch.full((len(self.x),), -1, dtype=torch.long, device=self.device)
        self._train_row[self.train_index] = torch.arange(len(self.train_index), device=self.device)
        groups = model.param_groups(self.tc.lr, self.tc.weight_decay) if hasattr(model, "param_groups") else [
            {"params": list(model.parameters()), "lr": self.tc.lr, "weight_decay": self.tc.weight_decay}]
        decoupled = self.tc.weight_decay > 0 or any(g.get("weight_decay", 0) > 0 for g in groups)  # AdamW when any group decays
        # fused: one kernel for all parameters (CPU and CUDA); the per-parameter loop cost ~20% of an MLP step
        fused = self.device.type in ("cpu", "cuda") and all(
            p.is_floating_point() for g in groups for p in g["params"])
        self.optimizer = (torch.optim.AdamW if decoupled else torch.optim.Adam)(groups, fused=fused or None)
        self._check_batches()
        self.steps_per_epoch = len(self.epoch_batches(0))
        total = self.tc.epochs * self.steps_per_epoch
        if self.tc.lr_schedule == "cosine":
            lam = lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, total) / total)) * 0.95 + 0.05  # noqa: E731
        else:
            lam = lambda s: 1.0  # noqa: E731
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lam)
        precision = getattr(self.tc, "precision", "fp32")
        if precision not in ("fp32", "bf16"):
            raise NebulaError(f"train.precision must be fp32 or bf16, found {precision!r}")
        self.autocast_dtype = torch.bfloat16 if precision == "bf16" else None
        # the module whose forward runs the step: the model, or its DistributedDataParallel wrapper
        self.forward_model = distributed.wrap_model(self.model, self.dist, self.device)
        if self.world_size > 1:
            torch.manual_seed(self.tc.seed + 7919 * (self.rank + 1))  # independent noise per rank
        self.start_epoch = 0
        self._resume_step = 0
        self._resume_partial: dict[str, Any] | None = None
        self.history = History()
        self._stop_signal: int | None = None
        self._last_update: tuple[int, int] | None = None  # (epoch, step) of the last optimiser step

    # ------------------------------------------------------------------ batching
    def _global_batch(self) -> int:
        return self.tc.batch_size

    def _check_batches(self) -> None:
        """Clear errors for batches that cannot train (fewer samples than processes; one sample with batch norm)."""
        sizes = [len(b) // self.world_size for b in self.epoch_batches(0)]
        smallest = min(sizes)
        if smallest == 0:
            raise NebulaError(f"{self.source}: {len(self.train_index)} training samples cannot be shared by "
                              f"{self.world_size} processes (expected at least {2 * self.world_size})")
        has_bn = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in self.model.modules())
        if smallest < 2 and has_bn:
            raise NebulaError(f"{self.source}: training batches of {smallest} sample per process, but batch norm needs "
                              f">= 2 (train split {len(self.train_index)} samples, train.batch_size {self.tc.batch_size}); "
                              "use a larger batch, more data, or model.batch_norm=false")

    def epoch_batches(self, epoch: int) -> list[torch.Tensor]:
        """Global index batches of one epoch: a permutation seeded by (seed, epoch), so resuming is exact.

        Batches smaller than 2 samples per process are dropped (batch norm needs >= 2) unless nothing
        else is left. Under torchrun every rank computes the same list and trains on its shard of each.
        """
        g = torch.Generator().manual_seed(self.tc.seed * 100003 + epoch)
        perm = self.train_index[torch.randperm(len(self.train_index), generator=g).to(self.device)]
        b = self._global_batch()
        batches = [perm[i : i + b] for i in range(0, len(perm), b)]
        return [bt for bt in batches if len(bt) >= 2 * self.world_size] or batches

    def make_batch(self, index: torch.Tensor, epoch: int = 0, step: int = 0) -> dict[str, torch.Tensor]:
        # index_select: a row gather, 2-3x faster than x[index] on CPU
        batch = {"x": torch.index_select(self.x, 0, index), "index": index}
        if self.neighbours is not None:
            # one of each sample's k neighbours, drawn from (seed, epoch, step) so a resume is exact
            g = torch.Generator().manual_seed((self.tc.seed * 100003 + epoch) * 100003 + step)
            pick = torch.randint(0, self.neighbours.shape[1], (len(index),), generator=g).to(self.device)
            batch["x_nb"] = torch.index_select(self.x, 0, self.neighbours[self._train_row[index], pick])
        if self.target is not None:
            batch["target"] = torch.index_select(self.target, 0, index)
        if self.y is not None:
            batch["y"] = torch.index_select(self.y, 0, index)
        return batch

    # ------------------------------------------------------------------ embedding
    @torch.no_grad()
    def embed(self, index: torch.Tensor | None = None, batch_size: int = 1024) -> torch.Tensor:
        """mu for the samples at ``index`` (default all), in eval mode; restores the training mode."""
        was = self.model.training
        self.model.eval()
        index = torch.arange(len(self.x), device=self.device) if index is None else index
        out = [self.model.embed(self.x[index[i : i + batch_size]]) for i in range(0, len(index), batch_size)]
        self.model.train(was)
        return torch.cat(out).float()

    @torch.no_grad()
    def mine_neighbours(self, k: int, chunk: int = 1024, space: str = "latent") -> torch.Tensor:
        """(n_train, k) global indices of the k nearest other training samples by squared distance of mu
        (``space`` latent) or of the flattened inputs (``input``), chunk x n_train distances at a time."""
        feats = self.x[self.train_index].flatten(1).float() if space == "input" else self.embed(self.train_index)
        k = min(k, len(feats) - 1)
        out = []
        for i in range(0, len(feats), chunk):
            d = squared_distances(feats[i : i + chunk], feats)
            rows = torch.arange(i, min(i + chunk, len(feats)), device=feats.device)
            d[rows - i, rows] = float("inf")  # never its own neighbour
            out.append(d.topk(k, dim=1, largest=False).indices)
        return self.train_index[torch.cat(out)]

    # ------------------------------------------------------------------ checkpoints
    def _rng_state(self) -> dict[str, Any]:
        np_state = np.random.get_state()
        py_state = random.getstate()
        torch_rng = torch.get_rng_state()
        state: dict[str, Any] = {
            "torch_rng": torch_rng,
            "generator": self.generator.get_state(),
            "numpy_rng": {"keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)), "pos": int(np_state[2]),
                          "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
            "python_rng": {"version": int(py_state[0]), "state": torch.tensor(py_state[1], dtype=torch.int64),
                           "gauss_next": py_state[2]},
        }
        if self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        if self.world_size > 1:  # every rank draws its own noise: keep all of them (collective)
            state["torch_rng_ranks"] = distributed.all_gather_tensor(torch_rng, self.device)
            if "cuda_rng" in state:
                state["cuda_rng_ranks"] = distributed.all_gather_tensor(state["cuda_rng"], self.device)
        return state

    def _set_rng_state(self, state: dict[str, Any]) -> None:
        if self.world_size > 1 and state.get("world_size") == self.world_size and "torch_rng_ranks" in state:
            torch.set_rng_state(state["torch_rng_ranks"][self.rank].clone())
            if "cuda_rng_ranks" in state and self.device.type == "cuda":
                torch.cuda.set_rng_state(state["cuda_rng_ranks"][self.rank].clone(), self.device)
        else:
            if self.world_size > 1 or state.get("world_size", 1) != self.world_size:
                self.notify(f"resuming a {state.get('world_size', 1)}-process checkpoint with {self.world_size} process(es): "
                         "random streams restart from the seed")
                torch.manual_seed(self.tc.seed + 7919 * (self.rank + 1) + 104729 * int(state["epochs_done"]))
            else:
                torch.set_rng_state(state["torch_rng"])
                if "cuda_rng" in state and self.device.type == "cuda":
                    torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        self.generator.set_state(state["generator"])
        npr = state["numpy_rng"]
        np.random.set_state(("MT19937", npr["keys"].numpy().astype(np.uint32), npr["pos"], npr["has_gauss"],
                             npr["cached_gaussian"]))
        pyr = state["python_rng"]
        random.setstate((pyr["version"], tuple(int(v) for v in pyr["state"].tolist()), pyr["gauss_next"]))

    def state(self, epochs_done: int, step: int = 0, partial: dict[str, Any] | None = None) -> dict[str, Any]:
        """Everything besides the weights that an exact resume needs (a collective under torchrun).

        ``epochs_done`` completed epochs plus ``step`` steps of the next one; ``partial`` holds that
        epoch's running loss sums (tensors), step count, re-seed count and seconds so far.
        """
        return {
            "epochs_done": epochs_done,
            "step": step,
            "steps_per_epoch": self.steps_per_epoch,
            "train_samples": len(self.train_index),
            "world_size": self.world_size,
            "config": yaml.safe_dump(self.cfg.to_dict(), sort_keys=False),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            **self._rng_state(),
            "history": [dict(r) for r in self.history.rows],
            "messages": list(self.history.messages),
            "partial": partial or {},
            "neighbours": self.neighbours.cpu() if self.neighbours is not None else None,
        }

    def resume(self) -> bool:
        """Restore the newest good checkpoint of ``run_dir``; returns whether one was found.

        A truncated or corrupt newest checkpoint is reported and the previous one is used. With no
        readable checkpoint, training starts from the beginning (and says so).
        """
        if self.run_dir is None:
            return False
        state = ckpt.load_latest_checkpoint(self.run_dir, self.model, warn=self.notify)
        where = torch.tensor([-1, -1] if state is None else [state["epochs_done"], state["step"]], device=self.device)
        if self.world_size > 1 and not torch.equal(distributed.all_reduce_max(where), -distributed.all_reduce_max(-where)):
            raise NebulaError(f"{self.run_dir}: the ranks found different checkpoints; under multi-node torchrun the "
                              "run folder must be on a file system every node sees")
        if state is None:
            self.notify(f"{self.run_dir}: no readable checkpoint; training starts from the beginning")
            self.history.rows = []
            self._rewrite_metrics()
            return False
        if state["train_samples"] != len(self.train_index) or state["steps_per_epoch"] != self.steps_per_epoch:
            raise NebulaError(f"{state['path']}: checkpoint was taken with {state['train_samples']} training samples and "
                              f"{state['steps_per_epoch']} steps per epoch, this run has {len(self.train_index)} and "
                              f"{self.steps_per_epoch} (expected the same data and batch size to resume)")
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self._set_rng_state(state)
        nb = state.get("neighbours")
        self.neighbours = nb.to(self.device) if nb is not None else None
        self.history.rows = [dict(r) for r in state["history"]]
        self.history.messages = list(state.get("messages", []))
        self.start_epoch = int(state["epochs_done"])
        self._resume_step = int(state["step"])
        self._resume_partial = state["partial"] if self._resume_step else None
        self.resumed_seconds = sum(float(r.get("seconds", 0.0)) for r in self.history.rows) + (
            float(self._resume_partial["seconds"]) if self._resume_partial else 0.0)
        self._rewrite_metrics()
        at = f"epoch {self.start_epoch + 1}, step {self._resume_step + 1}" if self._resume_step else f"epoch {self.start_epoch + 1}"
        self.notify(f"resumed from {Path(state['path']).name}: continuing at {at} of {self.tc.epochs}")
        return True

    def _rewrite_metrics(self) -> None:
        if self.run_dir is None or self.rank != 0:
            return
        path = self.run_dir / "metrics.csv"
        if not self.history.rows:
            path.unlink(missing_ok=True)
            return
        keys: list[str] = []
        for row in self.history.rows:
            keys += [k for k in row if k not in keys]
        lines = [",".join(keys)] + [",".join(_fmt(r.get(k, "")) for k in keys) for r in self.history.rows]
        ckpt.atomic_write_text(path, "\n".join(lines) + "\n")

    # ------------------------------------------------------------------ signals
    def _install_signals(self) -> dict[int, Any]:
        previous = {}

        def handler(signum, frame):  # noqa: ARG001
            if self._stop_signal is not None and signum == signal.SIGINT:
                raise KeyboardInterrupt  # a second Ctrl-C stops at once
            self._stop_signal = signum

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                previous[sig] = signal.signal(sig, handler)
            except ValueError:  # not the main thread
                pass
        return previous

    # ------------------------------------------------------------------ loop
    def fit(self) -> History:
        """Train from the start (or resume point) to ``cfg.train.epochs``; returns the per-epoch history.

        Raises:
            TrainingInterrupted: after SIGINT/SIGTERM, once the current step is done and a checkpoint
                is written.
            NonFiniteLoss: a loss term or gradient became NaN/inf (nothing is written for that step).
        """
        previous = self._install_signals()
        try:
            self._fit()
        finally:
            for sig, h in previous.items():
                signal.signal(sig, h)
        return self.history

    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    def _fit(self) -> None:
        tc = self.tc
        self.forward_model.train()
        done_steps = self.start_epoch * self.steps_per_epoch + self._resume_step
        bar = tqdm(total=tc.epochs * self.steps_per_epoch, initial=done_steps,
                   disable=tc.quiet or self.rank != 0, desc="train", unit="step", dynamic_ncols=True, leave=False)
        try:
            for epoch in range(self.start_epoch, tc.epochs):
                self._train_epoch(epoch, bar)
        finally:
            bar.close()
        # DDP keeps parameters equal; buffers (batch-norm running statistics) follow each rank's last
        # shard: hand every rank rank 0's, the ones the run folder stores
        distributed.broadcast_module(self.model)

    def _train_epoch(self, epoch: int, bar: Any) -> None:
        model, tc = self.model, self.tc
        skip, partial = 0, None
        if epoch == self.start_epoch and self._resume_step:
            skip, partial = self._resume_step, self._resume_partial
            self._resume_step, self._resume_partial = 0, None
        t0 = time.perf_counter() - (float(partial["seconds"]) if partial else 0.0)
        if skip == 0 and hasattr(model, "on_epoch_start"):
            # rank 0 alone runs the hook (e.g. a t-SNE anchor placement); what it changed reaches every rank
            msg = model.on_epoch_start(epoch, lambda: self.embed(self.train_index), self.generator,
                                       lambda: self.x[self.train_index]) if self.rank == 0 else None
            changed = torch.tensor([1.0 if msg else 0.0], device=self.device)
            if self.world_size > 1 and distributed.all_reduce_max(changed)[0] > 0:
                distributed.broadcast_module(model)
            if msg:
                self.log(msg)
                self.history.messages.append(msg)
            k, space = model.neighbour_views() if hasattr(model, "neighbour_views") else (0, "latent")
            if k <= 0 or len(self.train_index) < 2:
                self.neighbours = None
            elif self.neighbours is None or space == "latent":  # input-space neighbours never change
                self.neighbours = self.mine_neighbours(k, space=space)
        sums = RunningSums({k: v.to(self.device) for k, v in partial["sums"].items()} if partial else {})
        reseeded = int(partial["reseeded"]) if partial else 0
        batches = self.epoch_batches(epoch)
        stop = False
        step = skip - 1
        for step in range(skip, len(batches)):
            index = distributed.shard_batch(batches[step], self.rank, self.world_size)
            info = StepInfo(epoch=epoch, step=step, steps_per_epoch=self.steps_per_epoch)
            with self._autocast():
                out = self.forward_model(self.make_batch(index, epoch, step), info)
            stop = self._check_step(out, epoch, step)
            self.optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            self._clip_gradients(epoch, step)
            self.optimizer.step()
            self._last_update = (epoch, step)
            self.scheduler.step()
            if hasattr(model, "after_step"):
                reseeded += model.after_step()
            sums.add(out.terms, out.loss)
            bar.update(1)
            if step % 5 == 0 and not bar.disable:
                bar.set_postfix({k: f"{float(v) / (step + 1):.3g}" for k, v in sums.totals().items()}, refresh=False)
            if stop:
                break
        count = step + 1
        sums = sums.totals()
        self._check_parameters()  # before anything of this epoch is logged or saved
        if self.world_size > 1 and sums:  # per-epoch means over ranks (equal shard sizes)
            keys = list(sums)
            reduced = distributed.all_reduce_mean(torch.stack([sums[k] for k in keys]))
            sums = dict(zip(keys, reduced))
        if stop and count < len(batches):
            # mid-epoch: the checkpoint holds the running sums, resuming continues at the next step
            part = {"sums": {k: v.detach().cpu() for k, v in sums.items()}, "count": count, "reseeded": reseeded,
                    "seconds": time.perf_counter() - t0}
            self._save_checkpoint(epoch, count, part)
            raise TrainingInterrupted(self._interrupt_message(f"during epoch {epoch + 1} (after step {count} of {len(batches)})"))
        row = {"epoch": epoch + 1, **{k: float(v) / max(count, 1) for k, v in sums.items()},
               "lr": self.optimizer.param_groups[0]["lr"], "reseeded": reseeded,
               "seconds": time.perf_counter() - t0}
        self.history.rows.append(row)
        self._append_metrics(row)
        if self.run_dir is not None and ((epoch + 1) % max(tc.checkpoint_every, 1) == 0 or epoch + 1 == tc.epochs or stop):
            self._save_checkpoint(epoch + 1)
        if stop:
            raise TrainingInterrupted(self._interrupt_message(f"after epoch {epoch + 1}"))

    def _interrupt_message(self, when: str) -> str:
        name = signal.Signals(self._stop_signal).name if self._stop_signal else "a signal on another rank"
        if self.run_dir is None:
            return f"interrupted by {name} {when}"
        return f"interrupted by {name} {when}; checkpoint written, continue with: nebula train --resume {self.run_dir}"

    def _check_step(self, out: Any, epoch: int, step: int) -> bool:
        """Raise :class:`NonFiniteLoss` when the loss is NaN/inf on any rank; return whether any rank got a stop signal.

        A non-finite loss whose cause is a non-finite parameter (a NaN/inf gradient reached the previous
        update) is reported as that gradient's fault, at the step of that update.
        """
        finite = math.isfinite(out.loss.item())
        stop = self._stop_signal is not None
        if self.world_size > 1:
            flags = torch.tensor([0.0 if finite else 1.0, 1.0 if stop else 0.0], device=self.device)
            flags = distributed.all_reduce_max(flags)
            finite, stop = bool(flags[0] == 0), bool(flags[1] > 0)
        if not finite:
            self._check_parameters()
            bad = [k for k, v in out.terms.items() if not torch.isfinite(v).all()]
            names = ", ".join(bad) if bad else ("total" if not torch.isfinite(out.loss) else "on another rank")
            raise NonFiniteLoss(f"loss term(s) {names} became non-finite at epoch {epoch + 1}, step {step + 1}; stopped, "
                                f"{self._kept()} (try a lower --lr or --grad-clip)")
        return stop

    def _clip_gradients(self, epoch: int, step: int) -> None:
        """Clip the gradient norm to ``train.grad_clip`` when > 0, raising :class:`NonFiniteLoss` on a NaN/inf norm.

        Without clipping no pass over the gradients is made here: a NaN/inf gradient turns the parameters
        it reaches non-finite in the optimiser step, which :meth:`_check_parameters` reports (at the next
        non-finite loss, at the latest at the end of the epoch, before anything is saved).
        """
        if self.tc.grad_clip <= 0:
            return
        params = [p for p in self.model.parameters() if p.grad is not None]
        if not params:
            return
        norm = torch.nn.utils.clip_grad_norm_(params, self.tc.grad_clip)
        if torch.isfinite(norm):
            return
        bad = [n for n, p in self.model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
        raise NonFiniteLoss(f"gradient of {self._names(bad)} became non-finite at epoch {epoch + 1}, step {step + 1}; "
                            f"stopped, {self._kept()} (try a lower --lr or --grad-clip)")

    def _check_parameters(self) -> None:
        """Raise :class:`NonFiniteLoss` naming the parameters that became NaN/inf and the update that did it
        (one pass over the parameters; DDP keeps them equal on every rank)."""
        params = list(self.model.parameters())
        if not params or bool(torch.isfinite(torch.stack([p.detach().sum().float() for p in params]).sum())):
            return
        bad = [n for n, p in self.model.named_parameters() if not torch.isfinite(p.detach()).all()]
        if not bad:  # sums overflowed, every element finite
            return
        if self._last_update is None:
            raise NonFiniteLoss(f"parameters {self._names(bad)} are NaN/inf before training; stopped, {self._kept()}")
        epoch, step = self._last_update
        raise NonFiniteLoss(f"gradient of {self._names(bad)} became non-finite at epoch {epoch + 1}, step {step + 1} "
                            f"(the parameters it updated are NaN/inf); stopped, {self._kept()} "
                            "(try a lower --lr or --grad-clip)")

    @staticmethod
    def _names(names: list[str]) -> str:
        return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")

    def _kept(self) -> str:
        if self.run_dir is None:
            return "nothing was saved"
        last = ckpt.list_checkpoints(self.run_dir)
        return f"the last good checkpoint {last[-1].name} is kept" if last else "no checkpoint had been written yet"

    def _save_checkpoint(self, epochs_done: int, step: int = 0, partial: dict[str, Any] | None = None) -> None:
        if self.run_dir is None:
            return
        state = self.state(epochs_done, step, partial)  # collective under torchrun
        if self.rank == 0:
            ckpt.save_checkpoint(self.run_dir, epochs_done, self.model, state, step=step)

    def _append_metrics(self, row: dict[str, float]) -> None:
        if self.run_dir is None or self.rank != 0:
            return
        path = self.run_dir / "metrics.csv"
        header = list(row)
        if path.exists():
            with open(path, newline="") as f:
                existing = next(csv.reader(f), [])
            if existing != header:
                self._rewrite_metrics()
                return
            with open(path, "a") as f:
                f.write(",".join(_fmt(row[k]) for k in header) + "\n")
        else:
            ckpt.atomic_write_text(path, ",".join(header) + "\n" + ",".join(_fmt(row[k]) for k in header) + "\n")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)
