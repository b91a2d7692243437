"""Periodic evaluation: the held-out reconstruction column, label-free runs, early stopping on a loss."""

from __future__ import annotations

import csv
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from nebula.data.base import NebulaDataset
from nebula.run import train
from nebula.train.periodic import PeriodicEvaluation
from tests.reliability.helpers import tiny_config, tiny_dataset


def _rows(run_dir) -> list[dict[str, str]]:
    return list(csv.DictReader(open(run_dir / "metrics.csv")))


def test_eval_rec_is_the_test_splits_reconstruction(tmp_path):
    ds = tiny_dataset()
    run = train(tiny_config(tmp_path / "run", epochs=3, eval_every=1), dataset=ds)
    rows = _rows(tmp_path / "run")
    assert all(r["eval_rec"] and r["eval_knn"] and r["eval_anchor_acc"] for r in rows)
    test = np.asarray(ds.split) == 1
    # the final model's per-sample reconstruction of the test split, as embeddings.npz stores it
    assert float(rows[-1]["eval_rec"]) == pytest.approx(float(run.embeddings["rec"][test].mean()), rel=1e-4)


def test_unlabelled_data_gets_the_label_free_column(tmp_path):
    ds = tiny_dataset()
    unlabelled = NebulaDataset(x=ds.x, y=None, split=ds.split, meta=dict(ds.meta))
    train(tiny_config(tmp_path / "run", epochs=2, eval_every=1), dataset=unlabelled)
    rows = _rows(tmp_path / "run")
    assert all(float(r["eval_rec"]) > 0 for r in rows)
    assert "eval_knn" not in rows[0]


class _Model(torch.nn.Module):
    """embedding_batch's rec follows a scripted curve, one value per evaluation."""

    def __init__(self, curve: list[float]) -> None:
        super().__init__()
        self.curve = curve

    def embedding_batch(self, x: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:  # noqa: ARG002
        return {"z": x, "rec": torch.full((len(x),), self.curve.pop(0))}


def _trainer(curve: list[float]) -> SimpleNamespace:
    stops: list[str] = []
    return SimpleNamespace(model=_Model(curve), x=torch.zeros(4, 2), target=None, y=None, device="cpu",
                           dataset=SimpleNamespace(split=np.array([0, 0, 1, 1])),
                           callbacks=SimpleNamespace(evaluate=lambda *a: None), stop=stops.append, stops=stops)


def test_early_stopping_on_eval_rec_waits_for_a_fall():
    trainer = _trainer([5.0, 4.0, 4.5, 3.0, 3.5, 3.2])
    periodic = PeriodicEvaluation(1, "eval_rec", patience=2)
    for epoch in range(4):  # 5, 4 (better), 4.5 (1 bad), 3 (better): no stop
        periodic.on_epoch_end(trainer, epoch, {})
    assert trainer.stops == []
    periodic.on_epoch_end(trainer, 4, {})  # 3.5: 1 bad
    row: dict[str, float] = {}
    periodic.on_epoch_end(trainer, 5, row)  # 3.2: 2 bad -> stop, the best was the lowest
    assert row == {"eval_rec": pytest.approx(3.2)}
    assert len(trainer.stops) == 1 and "eval_rec did not improve for 2 evaluations (best 3.0000)" in trainer.stops[0]
