"""Loggers as callbacks: TensorBoard event files and a local MLflow store, read back; the CSV logger."""

from __future__ import annotations

import pytest

from nebula.run import train
from tests.reliability.helpers import tiny_config, tiny_dataset


def test_tensorboard_logger_writes_every_loss_term(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = tiny_config(tmp_path / "run", epochs=3, loggers=["tensorboard"], eval_every=1, figures=True)
    train(cfg, dataset=tiny_dataset())
    acc = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    for term in ("rec", "kl", "near", "metric", "loss"):
        assert f"epoch/{term}" in tags or term in ("near", "metric")  # anchor terms start after pre-training
    assert {"epoch/rec", "epoch/kl", "epoch/near", "epoch/metric", "epoch/lr", "step/loss", "eval/eval_knn"} <= tags
    assert "figures/reconstructions" in acc.Tags()["images"]
    epochs = [e.step for e in acc.Scalars("epoch/rec")]
    assert epochs == [1, 2, 3]
    metrics = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert float(metrics[-1].split(",")[metrics[0].split(",").index("rec")]) == pytest.approx(
        acc.Scalars("epoch/rec")[-1].value, rel=1e-5)


def test_mlflow_logger_records_a_run_in_the_local_store(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    import mlflow
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = tiny_config(tmp_path / "run", epochs=2, loggers=["mlflow"], figures=True)
    train(cfg, dataset=tiny_dataset())
    assert (tmp_path / "mlruns").is_dir()
    client = MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())
    experiment = client.get_experiment_by_name("nebula")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "run" and run.info.status == "FINISHED"
    assert run.data.params["train.epochs"] == "2" and run.data.params["model.latent_dim"] == "3"
    history = client.get_metric_history(run.info.run_id, "epoch.rec")
    assert [m.step for m in history] == [1, 2]
    assert mlflow.active_run() is None
    assert "figures/reconstructions.png" in [a.path for a in client.list_artifacts(run.info.run_id, "figures")]


def test_unknown_logger_is_refused_with_the_known_ones(tmp_path):
    from nebula.errors import ConfigError

    cfg = tiny_config(tmp_path / "run", epochs=1, loggers=["wandb"])
    with pytest.raises(ConfigError, match="unknown logger 'wandb'.*known: csv, mlflow, tensorboard"):
        train(cfg, dataset=tiny_dataset())
    assert not (tmp_path / "run").exists()
