"""The one trainer: optimiser, schedule, progress, metrics, checkpoints and the run folder.

It knows nothing of modalities or latent methods: a model is any ``nn.Module`` whose
``forward(batch, info)`` returns an object with ``loss`` (scalar) and ``terms`` (name -> scalar), and
which may define the hooks ``param_groups(lr, wd)``, ``on_epoch_start(epoch, embed_train, generator)``
and ``after_step()``.
"""

from __future__ import annotations

import csv
import math
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from nebula.config import Config
from nebula.data.base import NebulaDataset
from nebula.errors import NebulaError
from nebula.models import StepInfo
from nebula.train import checkpoint as ckpt


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


class Trainer:
    """Trains ``model`` on the train split (``dataset.split == 0``) of ``dataset``.

    Args:
        model: the model (see module docstring for the contract).
        dataset: in-memory dataset; all tensors are moved to the device once.
        cfg: run configuration (``cfg.train`` is used here).
        run_dir: where metrics and checkpoints go (None: nothing written).
        log: function for one-line messages (tqdm-safe).
    """

    def __init__(self, model: torch.nn.Module, dataset: NebulaDataset, cfg: Config, run_dir: Path | None = None,
                 log: Callable[[str], None] | None = None, rank: int = 0, world_size: int = 1) -> None:
        self.cfg, self.tc = cfg, cfg.train
        self.device = resolve_device(self.tc.device)
        self.model = model.to(self.device)
        self.dataset = dataset
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.rank, self.world_size = rank, world_size
        self.log = log or (lambda msg: tqdm.write(msg) if not self.tc.quiet else None)
        self.x = dataset.x.to(self.device)
        self.target = dataset.target.to(self.device) if dataset.target is not None else None
        self.y = torch.tensor(np.asarray(dataset.y), device=self.device) if dataset.y is not None else None
        self.train_index = torch.from_numpy(np.flatnonzero(dataset.split == 0)).to(self.device)
        if len(self.train_index) == 0:
            raise NebulaError(f"{dataset.meta.get('source', 'dataset')}: the train split is empty")
        self.generator = torch.Generator().manual_seed(self.tc.seed)
        groups = model.param_groups(self.tc.lr, self.tc.weight_decay) if hasattr(model, "param_groups") else [
            {"params": list(model.parameters()), "lr": self.tc.lr, "weight_decay": self.tc.weight_decay}]
        decoupled = self.tc.weight_decay > 0 or any(g.get("weight_decay", 0) > 0 for g in groups)  # AdamW when any group decays
        self.optimizer = torch.optim.AdamW(groups) if decoupled else torch.optim.Adam(groups)
        self.steps_per_epoch = max(1, self._num_batches())
        total = self.tc.epochs * self.steps_per_epoch
        if self.tc.lr_schedule == "cosine":
            lam = lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, total) / total)) * 0.95 + 0.05  # noqa: E731
        else:
            lam = lambda s: 1.0  # noqa: E731
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lam)
        self.start_epoch = 0
        self.history = History()
        self._stop_signal: int | None = None

    # ------------------------------------------------------------------ batching
    def _global_batch(self) -> int:
        return self.tc.batch_size

    def _num_batches(self) -> int:
        n, b = len(self.train_index), self._global_batch()
        full, rest = divmod(n, b)
        return full + (1 if rest >= 2 else 0)  # batch norm needs >= 2 samples

    def epoch_batches(self, epoch: int) -> list[torch.Tensor]:
        """Index batches of one epoch: a permutation seeded by (seed, epoch), so resuming is exact."""
        g = torch.Generator().manual_seed(self.tc.seed * 100003 + epoch)
        perm = self.train_index[torch.randperm(len(self.train_index), generator=g).to(self.device)]
        b = self._global_batch()
        batches = [perm[i : i + b] for i in range(0, len(perm), b)]
        return [bt for bt in batches if len(bt) >= 2] or batches

    def make_batch(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        batch = {"x": self.x[index], "index": index}
        if self.target is not None:
            batch["target"] = self.target[index]
        if self.y is not None:
            batch["y"] = self.y[index]
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

    # ------------------------------------------------------------------ checkpoints
    def state(self, epoch: int) -> dict[str, Any]:
        return {
            "epoch": epoch,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "generator": self.generator.get_state(),
            "numpy_rng": torch.from_numpy(np.frombuffer(np.random.get_state()[1].tobytes(), dtype=np.uint8).copy()),
            "history": [dict(r) for r in self.history.rows],
        }

    def resume(self) -> bool:
        """Restore the newest good checkpoint of ``run_dir``; returns whether one was found."""
        if self.run_dir is None:
            return False
        state = ckpt.load_latest_checkpoint(self.run_dir, self.model, warn=self.log)
        if state is None:
            return False
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        self.generator.set_state(state["generator"])
        self.history.rows = [dict(r) for r in state["history"]]
        self.start_epoch = int(state["epoch"]) + 1
        self._rewrite_metrics()
        self.log(f"resumed from epoch {state['epoch'] + 1} of {self.tc.epochs}")
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
            self._stop_signal = signum

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                previous[sig] = signal.signal(sig, handler)
            except ValueError:  # not the main thread
                pass
        return previous

    # ------------------------------------------------------------------ loop
    def fit(self) -> History:
        """Train from ``start_epoch`` to ``cfg.train.epochs``; returns the per-epoch history."""
        previous = self._install_signals()
        try:
            self._fit()
        finally:
            for sig, h in previous.items():
                signal.signal(sig, h)
        return self.history

    def _fit(self) -> None:
        model, tc = self.model, self.tc
        model.train()
        bar = tqdm(total=tc.epochs * self.steps_per_epoch, initial=self.start_epoch * self.steps_per_epoch,
                   disable=tc.quiet or self.rank != 0, desc="train", unit="step", dynamic_ncols=True, leave=False)
        for epoch in range(self.start_epoch, tc.epochs):
            t0 = time.perf_counter()
            if hasattr(model, "on_epoch_start"):
                msg = model.on_epoch_start(epoch, lambda: self.embed(self.train_index), self.generator)
                if msg:
                    self.log(msg)
                    self.history.messages.append(msg)
            sums: dict[str, torch.Tensor] = {}
            count = 0
            reseeded = 0
            for step, index in enumerate(self.epoch_batches(epoch)):
                info = StepInfo(epoch=epoch, step=step, steps_per_epoch=self.steps_per_epoch)
                out = model(self.make_batch(index), info)
                self._check_finite(out, epoch, step)
                self.optimizer.zero_grad(set_to_none=True)
                out.loss.backward()
                if tc.grad_clip > 0:
                    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
                    if not torch.isfinite(norm):
                        raise NonFiniteLoss(f"gradient norm is {norm.item()} at epoch {epoch + 1}, step {step + 1}; "
                                            "stopped, the last good checkpoint is kept")
                self.optimizer.step()
                self.scheduler.step()
                if hasattr(model, "after_step"):
                    reseeded += model.after_step()
                for k, v in out.terms.items():
                    sums[k] = sums.get(k, 0.0) + v.detach()
                sums["loss"] = sums.get("loss", 0.0) + out.loss.detach()
                count += 1
                bar.update(1)
                if step % 5 == 0:
                    bar.set_postfix({k: f"{float(v) / count:.3g}" for k, v in sums.items()}, refresh=False)
                if self._stop_signal is not None:
                    break
            row = {"epoch": epoch + 1, **{k: float(v) / max(count, 1) for k, v in sums.items()},
                   "lr": self.optimizer.param_groups[0]["lr"], "reseeded": reseeded,
                   "seconds": time.perf_counter() - t0}
            if self._stop_signal is not None and count < self.steps_per_epoch:
                # an unfinished epoch is not recorded: resuming replays it from its start
                self._save_checkpoint(epoch - 1) if epoch > self.start_epoch else None
                bar.close()
                raise TrainingInterrupted(
                    f"interrupted by signal {self._stop_signal} during epoch {epoch + 1}; "
                    f"resume with --resume {self.run_dir}" if self.run_dir else "interrupted")
            self.history.rows.append(row)
            self._append_metrics(row)
            if self.run_dir is not None and ((epoch + 1) % max(tc.checkpoint_every, 1) == 0 or epoch + 1 == tc.epochs):
                self._save_checkpoint(epoch)
            if self._stop_signal is not None:
                bar.close()
                raise TrainingInterrupted(f"interrupted by signal {self._stop_signal} after epoch {epoch + 1}; "
                                          f"resume with --resume {self.run_dir}")
        bar.close()

    def _save_checkpoint(self, epoch: int) -> None:
        if self.run_dir is not None and self.rank == 0 and epoch >= 0:
            ckpt.save_checkpoint(self.run_dir, epoch, self._unwrapped(), self.state(epoch))

    def _unwrapped(self) -> torch.nn.Module:
        return getattr(self.model, "module", self.model)

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

    def _check_finite(self, out: Any, epoch: int, step: int) -> None:
        if torch.isfinite(out.loss):
            return
        bad = [k for k, v in out.terms.items() if not torch.isfinite(v)]
        names = ", ".join(bad) if bad else "total"
        raise NonFiniteLoss(f"loss term(s) {names} became non-finite at epoch {epoch + 1}, step {step + 1}; "
                            "stopped, the last good checkpoint is kept (try a lower --lr or train.grad_clip)")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)
