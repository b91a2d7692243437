"""The one trainer: batching, optimiser, schedule and the loop, calling the method contract and callbacks.

It knows the contract of :mod:`nebula.train.contract` and a list of
:class:`~nebula.train.callbacks.Callback` objects, nothing of any method: a method's own mechanics
(NVC's anchor placement, dead anchors, neighbour views) are the callbacks its model returns from the
optional ``callbacks()`` hook. Random state and running sums live in :mod:`nebula.train.state`, the
numeric guards in :mod:`nebula.train.guards`, metrics.csv / TensorBoard / MLflow in
:mod:`nebula.train.loggers`, checkpoint files in :mod:`nebula.train.checkpoint`.
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
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
from nebula.train import checkpoint as ckpt
from nebula.train import distributed
from nebula.train.callbacks import Callback, CallbackList
from nebula.train.contract import StepInfo, optional_hook
from nebula.train.guards import NonFiniteLoss, NumericGuards
from nebula.train.loggers import build_loggers
from nebula.train.periodic import PeriodicEvaluation
from nebula.train.progress import ProgressBar
from nebula.train.state import RunningSums, rng_state, set_rng_state

__all__ = ["History", "NonFiniteLoss", "Trainer", "TrainingInterrupted", "resolve_device"]


class TrainingInterrupted(NebulaError):
    """SIGINT/SIGTERM: a checkpoint was written and the run can be resumed."""


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


class Trainer:
    """Trains ``model`` on the train split (``dataset.split == 0``) of ``dataset``.

    Args:
        model: a model of the method contract (:mod:`nebula.train.contract`).
        dataset: in-memory dataset; all tensors are moved to the device once.
        cfg: run configuration (``cfg.train`` is used here).
        run_dir: where metrics and checkpoints go (None: nothing written). Under torchrun every rank
            passes the same folder (it reads checkpoints from it); only rank 0 writes.
        log: function for one-line messages (tqdm-safe).
        dist_ctx: this process's place in a torchrun job (default: single process).
        device: overrides ``cfg.train.device`` (torchrun puts rank r on ``cuda:LOCAL_RANK``).
        callbacks: the user's callbacks, called after the method's and the loggers.

    Checkpoints hold the weights plus optimiser, scheduler, RNG (torch, numpy, python, the trainer's
    generator; per rank under torchrun), data-order state and what callbacks add; the data order of
    epoch e is a permutation seeded by (seed, e), so a run resumed from a checkpoint taken after s steps
    of epoch e replays exactly the same batches, noise and updates as an uninterrupted run.
    """

    def __init__(self, model: torch.nn.Module, dataset: NebulaDataset, cfg: Config, run_dir: Path | None = None,
                 log: Callable[[str], None] | None = None, dist_ctx: distributed.DistContext | None = None,
                 device: torch.device | None = None, callbacks: list[Callback] | None = None) -> None:
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
        self.notify = log or (lambda msg: tqdm.write(msg, file=sys.stderr) if self.dist.is_main else None)
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
        hook = optional_hook(model, "param_groups")
        groups = hook(self.tc.lr, self.tc.weight_decay) if hook else [
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
        #: steps of the start epoch already done by the session a resume continues
        self.resume_step = 0
        self._resume_partial: dict[str, Any] | None = None
        self.resumed = False
        self.history = History()
        self._last_checkpoint = time.monotonic()  # train.checkpoint_seconds counts from here
        #: the current epoch's running loss sums
        self.sums = RunningSums({})
        self._stop_signal: int | None = None
        #: why a callback ended training early (the run is complete), or None
        self.stop_reason: str | None = None
        self.guards = NumericGuards(self.model, self.world_size, self.device, self._kept)
        method_hook = optional_hook(model, "callbacks")
        periodic = [PeriodicEvaluation(self.tc.eval_every, self.tc.early_stop_metric, self.tc.early_stop_patience)
                    ] if getattr(self.tc, "eval_every", 0) > 0 else []
        self.callbacks = CallbackList([*(method_hook() if method_hook else []), *periodic, ProgressBar(self.tc.quiet),
                                       *build_loggers(list(getattr(self.tc, "loggers", []) or []), self.run_dir),
                                       *(callbacks or [])])

    # ------------------------------------------------------------------ batching
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
        b = self.tc.batch_size
        batches = [perm[i : i + b] for i in range(0, len(perm), b)]
        return [bt for bt in batches if len(bt) >= 2 * self.world_size] or batches

    def make_batch(self, index: torch.Tensor, epoch: int = 0, step: int = 0) -> dict[str, torch.Tensor]:
        """The batch of the samples at ``index`` (global indices); callbacks may add entries (``on_batch``)."""
        # index_select: a row gather, 2-3x faster than x[index] on CPU
        batch = {"x": torch.index_select(self.x, 0, index), "index": index}
        if self.target is not None:
            batch["target"] = torch.index_select(self.target, 0, index)
        if self.y is not None:
            batch["y"] = torch.index_select(self.y, 0, index)
        self.callbacks.batch(self, batch, epoch, step)
        return batch

    @torch.no_grad()
    def embed(self, index: torch.Tensor | None = None, batch_size: int = 1024) -> torch.Tensor:
        """The model's ``embed`` (N, d) for the samples at ``index`` (default all), in eval mode; restores the mode."""
        was = self.model.training
        self.model.eval()
        index = torch.arange(len(self.x), device=self.device) if index is None else index
        out = [self.model.embed(self.x[index[i : i + batch_size]]) for i in range(0, len(index), batch_size)]
        self.model.train(was)
        return torch.cat(out).float()

    # ------------------------------------------------------------------ checkpoints
    def state(self, epochs_done: int, step: int = 0, partial: dict[str, Any] | None = None) -> dict[str, Any]:
        """Everything besides the weights that an exact resume needs (a collective under torchrun).

        ``epochs_done`` completed epochs plus ``step`` steps of the next one; ``partial`` holds that
        epoch's running loss sums (tensors), step count and seconds so far; callbacks add their state.
        """
        state = {
            "epochs_done": epochs_done,
            "step": step,
            "steps_per_epoch": self.steps_per_epoch,
            "train_samples": len(self.train_index),
            "world_size": self.world_size,
            "config": yaml.safe_dump(self.cfg.to_dict(), sort_keys=False),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            **rng_state(self.generator, self.device, self.world_size),
            "history": [dict(r) for r in self.history.rows],
            "messages": list(self.history.messages),
            "partial": partial or {},
        }
        self.callbacks.checkpoint(self, state)
        return state

    def resume(self) -> bool:
        """Restore the newest good checkpoint of ``run_dir``; returns whether one was found.

        A truncated or corrupt newest checkpoint is reported and the previous one is used. With no
        readable checkpoint, training starts from the beginning (and says so).
        """
        if self.run_dir is None:
            return False
        notes: list[str] = []  # shown once a checkpoint is found; folded into the error when none is
        state = ckpt.load_latest_checkpoint(self.run_dir, self.model, warn=notes.append)
        where = torch.tensor([-1, -1] if state is None else [state["epochs_done"], state["step"]], device=self.device)
        if self.world_size > 1 and not torch.equal(distributed.all_reduce_max(where), -distributed.all_reduce_max(-where)):
            raise NebulaError(f"{self.run_dir}: the ranks found different checkpoints; under multi-node torchrun the "
                              "run folder must be on a file system every node sees")
        self.resumed = True
        if state is None and ckpt.list_checkpoints(self.run_dir):
            first = notes[0].split(" is unreadable ", 1)[-1].split("; falling back")[0] if notes else ""
            raise NebulaError(f"{self.run_dir}: every checkpoint is unreadable ({len(notes)}, the newest {first}), nothing "
                              f"to resume from; start again with: nebula train --config {self.run_dir / 'config.yaml'} "
                              f"-o {self.run_dir} --overwrite")
        for note in notes:
            self.notify(note)
        if state is None:
            self.notify(f"{self.run_dir}: no checkpoint yet; training starts from the beginning")
            self.history.rows = []
            return False
        if state["train_samples"] != len(self.train_index) or state["steps_per_epoch"] != self.steps_per_epoch:
            raise NebulaError(f"{state['path']}: checkpoint was taken with {state['train_samples']} training samples and "
                              f"{state['steps_per_epoch']} steps per epoch, this run has {len(self.train_index)} and "
                              f"{self.steps_per_epoch} (expected the same data and batch size to resume)")
        done = int(state["epochs_done"])
        if done > self.tc.epochs or (done == self.tc.epochs and not state["step"]):
            raise NebulaError(f"{self.run_dir}: the run has trained {done} epochs already, train.epochs is "
                              f"{self.tc.epochs}; extend it with: nebula train --resume {self.run_dir} --epochs N "
                              f"(N > {done})")
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state, self.generator, self.device, self.rank, self.world_size, self.tc.seed, self.notify)
        self.history.rows = [dict(r) for r in state["history"]]
        self.history.messages = list(state.get("messages", []))
        self.start_epoch = int(state["epochs_done"])
        self.resume_step = int(state["step"])
        self._resume_partial = state["partial"] if self.resume_step else None
        self.resumed_seconds = sum(float(r.get("seconds", 0.0)) for r in self.history.rows) + (
            float(self._resume_partial["seconds"]) if self._resume_partial else 0.0)
        self.callbacks.resume(self, state)
        at = (f"epoch {self.start_epoch + 1} of {self.tc.epochs}, step {self.resume_step + 1} of {self.steps_per_epoch}"
              if self.resume_step else f"epoch {self.start_epoch + 1} of {self.tc.epochs}")
        try:
            planned = int(yaml.safe_load(state.get("config") or "{}")["train"]["epochs"])
        except (yaml.YAMLError, KeyError, TypeError, ValueError):
            planned = self.tc.epochs
        more = (f" (extended from {planned} epochs; the {self.tc.lr_schedule} schedule now spans {self.tc.epochs})"
                if planned != self.tc.epochs else "")
        self.notify(f"resumed from {Path(state['path']).name}: continuing at {at}{more}")
        return True

    def _kept(self) -> str:
        if self.run_dir is None:
            return "nothing was saved"
        last = ckpt.list_checkpoints(self.run_dir)
        return f"the last good checkpoint {last[-1].name} is kept" if last else "no checkpoint had been written yet"

    def _checkpoint_due(self, epoch: int) -> bool:
        """Whether epoch ``epoch`` (0-based, just finished) ends with a periodic checkpoint: every
        ``train.checkpoint_every`` epochs, once ``train.checkpoint_seconds`` have passed since the last checkpoint
        (or this session's start), so that short epochs do not spend their time writing checkpoints (a digits
        run: 13 % of its wall time with one per epoch). The same answer on every rank (state() is collective)."""
        if (epoch + 1) % max(self.tc.checkpoint_every, 1):
            return False
        due = time.monotonic() - self._last_checkpoint >= self.tc.checkpoint_seconds
        if self.world_size > 1:
            due = bool(distributed.all_reduce_max(torch.tensor([float(due)], device=self.device))[0] > 0)
        return due

    def _save_checkpoint(self, epochs_done: int, step: int = 0, partial: dict[str, Any] | None = None) -> None:
        if self.run_dir is None:
            return
        self._last_checkpoint = time.monotonic()
        state = self.state(epochs_done, step, partial)  # collective under torchrun
        if self.rank == 0:
            ckpt.save_checkpoint(self.run_dir, epochs_done, self.model, state, step=step)

    def stop(self, reason: str) -> None:
        """End training after the current epoch (a callback's early stop); the run is complete."""
        self.stop_reason = reason

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

    def _interrupt_message(self, when: str) -> str:
        name = signal.Signals(self._stop_signal).name if self._stop_signal else "a signal on another rank"
        if self.run_dir is None:
            return f"interrupted by {name} {when}"
        return f"interrupted by {name} {when}; checkpoint written, continue with: nebula train --resume {self.run_dir}"

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
            self.forward_model.train()
            self.callbacks.fit_start(self)
            try:
                for epoch in range(self.start_epoch, self.tc.epochs):
                    self._train_epoch(epoch)
                    if self.stop_reason:
                        self.log(self.stop_reason)
                        self.history.messages.append(self.stop_reason)
                        break
            finally:
                self.callbacks.fit_end(self)
            # DDP keeps parameters equal; buffers (batch-norm running statistics) follow each rank's last
            # shard: hand every rank rank 0's, the ones the run folder stores
            distributed.broadcast_module(self.model)
        finally:
            for sig, h in previous.items():
                signal.signal(sig, h)
        return self.history

    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    def _train_epoch(self, epoch: int) -> None:
        tc, guards = self.tc, self.guards
        skip, partial = 0, None
        if epoch == self.start_epoch and self.resume_step:
            skip, partial = self.resume_step, self._resume_partial
            self.resume_step, self._resume_partial = 0, None
        t0 = time.perf_counter() - (float(partial["seconds"]) if partial else 0.0)
        self.callbacks.epoch_start(self, epoch, resumed=skip > 0)
        self.sums = RunningSums({k: v.to(self.device) for k, v in partial["sums"].items()} if partial else {})
        batches = self.epoch_batches(epoch)
        stop = False
        step = skip - 1
        for step in range(skip, len(batches)):
            index = distributed.shard_batch(batches[step], self.rank, self.world_size)
            info = StepInfo(epoch=epoch, step=step, steps_per_epoch=self.steps_per_epoch)
            batch = self.make_batch(index, epoch, step)
            with self._autocast():
                out = self.forward_model(batch, info)
            stop = guards.check_step(out, self._stop_signal is not None, epoch, step)
            self.optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            guards.clip_gradients(tc.grad_clip, epoch, step)
            self.optimizer.step()
            guards.last_update = (epoch, step)
            self.scheduler.step()
            self.sums.add(out.terms, out.loss)
            self.callbacks.step_end(self, epoch, step, out)
            if stop:
                break
        count = step + 1
        sums = self.sums.totals()
        guards.check_parameters()  # before anything of this epoch is logged or saved
        if self.world_size > 1 and sums:  # per-epoch means over ranks (equal shard sizes)
            keys = list(sums)
            reduced = distributed.all_reduce_mean(torch.stack([sums[k] for k in keys]))
            sums = dict(zip(keys, reduced))
        if stop and count < len(batches):
            # mid-epoch: the checkpoint holds the running sums, resuming continues at the next step
            part = {"sums": {k: v.detach().cpu() for k, v in sums.items()}, "count": count,
                    "seconds": time.perf_counter() - t0}
            self._save_checkpoint(epoch, count, part)
            raise TrainingInterrupted(self._interrupt_message(f"during epoch {epoch + 1} (after step {count} of {len(batches)})"))
        row = {"epoch": epoch + 1, **{k: float(v) / max(count, 1) for k, v in sums.items()},
               "lr": self.optimizer.param_groups[0]["lr"], "seconds": time.perf_counter() - t0}
        self.history.rows.append(row)
        self.callbacks.epoch_end(self, epoch, row)  # method callbacks add columns, then the loggers write the row
        last = epoch + 1 == tc.epochs or self.stop_reason is not None
        if self.run_dir is not None and (last or stop or self._checkpoint_due(epoch)):
            self._save_checkpoint(epoch + 1)
        if stop:
            raise TrainingInterrupted(self._interrupt_message(f"after epoch {epoch + 1}"))
