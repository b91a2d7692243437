"""Periodic evaluation during training, as a callback, with optional early stopping.

Every ``every`` epochs the model's ``embed`` of the train and test splits gives cheap label-based
metrics, added to the epoch's row (and so to metrics.csv, TensorBoard and MLflow):

* ``eval_knn``: accuracy on the test split of a k-nearest-neighbour vote (cosine, k = 10) among the
  training embeddings;
* ``eval_anchor_acc`` (models with anchors, ``anchor_array()``): Hungarian accuracy of the
  nearest-anchor assignment of the test embeddings;
* ``eval_rec`` (label-free, also for unlabelled data; methods whose ``embedding_batch`` returns ``rec``):
  the mean per-sample reconstruction loss of the test split, decoded from mu in eval mode (the held-out
  curve beside metrics.csv's training ``rec``).

With ``metric`` set, training stops once that metric has not improved (risen; for ``eval_rec``, fallen)
for ``patience`` evaluations (the run is then complete, with a checkpoint of the epoch it stopped at).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from nebula.errors import ConfigError
from nebula.train.callbacks import Callback

METRICS = ("eval_knn", "eval_anchor_acc", "eval_rec")
#: metrics where lower is better
LOSSES = ("eval_rec",)


def knn_accuracy(train: torch.Tensor, train_y: torch.Tensor, test: torch.Tensor, test_y: torch.Tensor,
                 k: int = 10, chunk: int = 1024) -> float:
    """Cosine k-NN vote accuracy; train: (N, d), test: (M, d), labels int64 (chunk x N similarities at a time)."""
    a = torch.nn.functional.normalize(train.float(), dim=1)
    k = min(k, len(a))
    classes = int(max(train_y.max(), test_y.max())) + 1
    right = 0
    for i in range(0, len(test), chunk):
        b = torch.nn.functional.normalize(test[i : i + chunk].float(), dim=1)
        idx = (b @ a.T).topk(k, dim=1).indices
        votes = torch.zeros(len(b), classes, device=b.device).scatter_add_(
            1, train_y[idx], torch.ones(idx.shape, device=b.device))
        right += int((votes.argmax(1) == test_y[i : i + chunk]).sum())
    return right / max(len(test), 1)


def hungarian_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    """Best one-to-one matching of predicted clusters to classes (scipy's linear_sum_assignment)."""
    from scipy.optimize import linear_sum_assignment

    k = int(max(y.max(), pred.max())) + 1
    counts = np.zeros((k, k), np.int64)
    np.add.at(counts, (pred, y), 1)
    rows, cols = linear_sum_assignment(-counts)
    return float(counts[rows, cols].sum() / max(len(y), 1))


class PeriodicEvaluation(Callback):
    """Adds ``eval_*`` columns every ``every`` epochs; early stopping on ``metric`` (one of :data:`METRICS`)."""

    def __init__(self, every: int, metric: str = "", patience: int = 5, k: int = 10) -> None:
        if metric and metric not in METRICS:
            raise ConfigError(f"train.early_stop_metric must be one of {', '.join(METRICS)}, found {metric!r}")
        self.every, self.metric, self.patience, self.k = every, metric, patience, k
        self.best, self.bad = -math.inf, 0  # best of sign * metric, so that higher is always better
        self.sign = -1.0 if metric in LOSSES else 1.0

    def on_epoch_end(self, trainer: Any, epoch: int, row: dict[str, Any]) -> None:
        if (epoch + 1) % self.every != 0:
            return
        split = torch.from_numpy(np.asarray(trainer.dataset.split)).to(trainer.device)
        test_index = torch.nonzero(split == 1).flatten()
        if len(test_index) == 0:
            return
        metrics: dict[str, float] = {}
        rec = held_out_reconstruction(trainer, test_index)
        if rec is not None:
            metrics["eval_rec"] = rec
        if trainer.y is not None:
            train_z, test_z = trainer.embed(trainer.train_index), trainer.embed(test_index)
            train_y, test_y = trainer.y[trainer.train_index], trainer.y[test_index]
            metrics["eval_knn"] = knn_accuracy(train_z, train_y, test_z, test_y, self.k)
            anchors = trainer.model.anchor_array() if hasattr(trainer.model, "anchor_array") else None
            if anchors is not None:
                d = torch.cdist(test_z, anchors.float().to(test_z.device))
                metrics["eval_anchor_acc"] = hungarian_accuracy(test_y.cpu().numpy(), d.argmin(1).cpu().numpy())
        if not metrics:
            return
        row.update(metrics)
        trainer.callbacks.evaluate(trainer, epoch, metrics)
        if self.metric and self.metric in metrics:
            value = self.sign * metrics[self.metric]
            if value > self.best:
                self.best, self.bad = value, 0
            else:
                self.bad += 1
                if self.bad >= self.patience:
                    trainer.stop(f"early stopping at epoch {epoch + 1}: {self.metric} did not improve for "
                                 f"{self.patience} evaluations (best {self.sign * self.best:.4f})")

    def on_checkpoint(self, trainer: Any, state: dict[str, Any]) -> None:
        state["periodic_evaluation"] = {"best": self.best, "bad": self.bad}

    def on_resume(self, trainer: Any, state: dict[str, Any]) -> None:
        saved = state.get("periodic_evaluation") or {}
        self.best, self.bad = float(saved.get("best", -math.inf)), int(saved.get("bad", 0))


@torch.no_grad()
def held_out_reconstruction(trainer: Any, index: torch.Tensor, batch_size: int = 1024) -> float | None:
    """Mean over the samples at ``index`` of the ``rec`` that the model's ``embedding_batch`` returns (eval
    mode, restored after), or None when it returns none (e.g. a contrastive learner)."""
    model, total, count = trainer.model, 0.0, 0
    was = model.training
    model.eval()
    try:
        for i in range(0, len(index), batch_size):
            part = index[i : i + batch_size]
            x = trainer.x[part]
            target = trainer.target[part] if trainer.target is not None else x
            rec = model.embedding_batch(x, target).get("rec")
            if rec is None:
                return None
            total, count = total + float(rec.double().sum()), count + len(part)
    finally:
        model.train(was)
    return total / max(count, 1)
