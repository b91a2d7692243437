"""Loggers are callbacks: CSV (``metrics.csv``, always), TensorBoard and MLflow (optional extras).

Each writes every loss term per epoch (TensorBoard and MLflow also per step, under ``step/``), the
learning rate and the epoch time, periodic evaluation metrics under ``eval/``, and (``log_figures``) the
run's figures once they are drawn. Chosen with
``train.loggers`` (``--logger csv,tensorboard,mlflow``); under torchrun only rank 0 logs.

* TensorBoard: event files in ``RUN/tensorboard`` (``tensorboard --logdir RUN``); needs ``tensorboard``.
* MLflow: a run in the local store ``./mlruns`` (or ``MLFLOW_TRACKING_URI``) named after the run folder,
  with the config as parameters; needs ``mlflow`` (or ``mlflow-skinny``).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from nebula.errors import ConfigError
from nebula.registry import Registry
from nebula.train import checkpoint as ckpt
from nebula.train.callbacks import Callback

#: name -> factory(trainer config, run_dir) -> Callback
LOGGERS: Registry[Any] = Registry("logger")

#: how often the per-step loss is sent to TensorBoard / MLflow (steps)
STEP_EVERY = 10


def format_value(v: Any) -> str:
    """A metrics.csv cell: floats with 6 significant digits."""
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


class CSVLogger(Callback):
    """The one writer of ``metrics.csv``: a row per epoch, a column per logged value. A resumed run's file is
    rewritten from the checkpoint's history, so it never holds rows of epochs the checkpoint had not finished."""

    def __init__(self, run_dir: Path | None) -> None:
        self.path = Path(run_dir) / "metrics.csv" if run_dir is not None else None

    def on_fit_start(self, trainer: Any) -> None:
        if trainer.resumed:
            self.rewrite(trainer.history.rows)

    def on_epoch_end(self, trainer: Any, epoch: int, row: dict[str, Any]) -> None:
        if self.path is None or trainer.rank != 0:
            return
        header = list(row)
        if self.path.exists():
            with open(self.path, newline="") as f:
                existing = next(csv.reader(f), [])
            if existing != header:
                self.rewrite(trainer.history.rows)
                return
            with open(self.path, "a") as f:
                f.write(",".join(format_value(row[k]) for k in header) + "\n")
        else:
            ckpt.atomic_write_text(self.path, ",".join(header) + "\n" + ",".join(format_value(row[k]) for k in header) + "\n")

    def rewrite(self, rows: list[dict[str, Any]]) -> None:
        """Write ``rows`` as the whole file (no file when there are none)."""
        if self.path is None:
            return
        if not rows:
            self.path.unlink(missing_ok=True)
            return
        keys: list[str] = []
        for row in rows:
            keys += [k for k in row if k not in keys]
        lines = [",".join(keys)] + [",".join(format_value(r.get(k, "")) for k in keys) for r in rows]
        ckpt.atomic_write_text(self.path, "\n".join(lines) + "\n")


class _StepLogger(Callback):
    """Shared part of the TensorBoard and MLflow loggers: what is sent and when."""

    def scalar(self, name: str, value: float, step: int) -> None:
        raise NotImplementedError

    def on_step_end(self, trainer: Any, epoch: int, step: int, out: Any) -> None:
        g = epoch * trainer.steps_per_epoch + step
        if trainer.rank == 0 and g % STEP_EVERY == 0:
            for k, v in out.terms.items():
                self.scalar(f"step/{k}", float(v.detach()), g)
            self.scalar("step/loss", float(out.loss.detach()), g)

    def on_epoch_end(self, trainer: Any, epoch: int, row: dict[str, Any]) -> None:
        if trainer.rank == 0:
            for k, v in row.items():
                if k != "epoch" and isinstance(v, (int, float)):
                    self.scalar(f"epoch/{k}", float(v), epoch + 1)

    def on_evaluate(self, trainer: Any, epoch: int, metrics: dict[str, float]) -> None:
        if trainer.rank == 0:
            for k, v in metrics.items():
                self.scalar(f"eval/{k}", float(v), epoch + 1)

    def log_figures(self, paths: list[Path]) -> None:
        """Add the PNG figures at ``paths`` (after training, when they are drawn)."""


class TensorBoardLogger(_StepLogger):
    """Event files under ``run_dir/tensorboard`` (``torch.utils.tensorboard``)."""

    def __init__(self, run_dir: Path | None) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError("--logger tensorboard needs the tensorboard package: pip install tensorboard") from None
        if run_dir is None:
            raise ConfigError("--logger tensorboard needs a run folder (-o)")
        self._writer_class, self.log_dir, self.writer = SummaryWriter, Path(run_dir) / "tensorboard", None

    def on_fit_start(self, trainer: Any) -> None:
        if trainer.rank == 0:
            self.writer = self._writer_class(log_dir=str(self.log_dir))

    def scalar(self, name: str, value: float, step: int) -> None:
        if self.writer is not None:
            self.writer.add_scalar(name, value, step)

    def on_epoch_end(self, trainer: Any, epoch: int, row: dict[str, Any]) -> None:
        super().on_epoch_end(trainer, epoch, row)
        if self.writer is not None:
            self.writer.flush()

    def on_fit_end(self, trainer: Any) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def log_figures(self, paths: list[Path]) -> None:
        import matplotlib.image

        writer = self._writer_class(log_dir=str(self.log_dir))
        for path in paths:
            writer.add_image(f"figures/{Path(path).stem}", matplotlib.image.imread(path)[..., :3], dataformats="HWC")
        writer.close()


class MLflowLogger(_StepLogger):
    """One MLflow run per training session in the local store (``./mlruns`` unless ``MLFLOW_TRACKING_URI``)."""

    def __init__(self, run_dir: Path | None) -> None:
        try:
            import mlflow
        except ImportError:
            raise ConfigError("--logger mlflow needs the mlflow package: pip install mlflow") from None
        self.mlflow, self.run_dir, self.active, self.run_id = mlflow, run_dir, None, None

    def on_fit_start(self, trainer: Any) -> None:
        if trainer.rank != 0:
            return
        mlflow = self.mlflow
        if not os.environ.get("MLFLOW_TRACKING_URI"):
            # the local file store (MLflow 3 asks for this opt-in; a database store needs a server or SQLAlchemy)
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            mlflow.set_tracking_uri(Path("mlruns").resolve().as_uri())
        mlflow.set_experiment("nebula")
        name = Path(self.run_dir).name if self.run_dir is not None else "nebula"
        self.active = mlflow.start_run(run_name=name)
        self.run_id = self.active.info.run_id
        flat = {f"{section}.{k}": v for section, values in trainer.cfg.to_dict().items() if isinstance(values, dict)
                for k, v in values.items() if not isinstance(v, (dict, list))}
        mlflow.log_params({k: str(v)[:500] for k, v in flat.items()})
        if self.run_dir is not None:
            mlflow.set_tag("run_dir", str(Path(self.run_dir).resolve()))

    def scalar(self, name: str, value: float, step: int) -> None:
        if self.active is not None:
            self.mlflow.log_metric(name.replace("/", "."), value, step=step)

    def on_fit_end(self, trainer: Any) -> None:
        if self.active is not None:
            self.mlflow.end_run()
            self.active = None

    def log_figures(self, paths: list[Path]) -> None:
        if self.run_id is not None:
            with self.mlflow.start_run(run_id=self.run_id):
                for path in paths:
                    self.mlflow.log_artifact(str(path), artifact_path="figures")


LOGGERS.register("csv", CSVLogger)
LOGGERS.register("tensorboard", TensorBoardLogger)
LOGGERS.register("mlflow", MLflowLogger)


def build_loggers(names: list[str], run_dir: Path | None) -> list[Callback]:
    """The loggers ``names`` (csv is always on, first)."""
    chosen = ["csv"] + [n for n in names if n != "csv"]
    return [LOGGERS.lookup(n)(run_dir) for n in dict.fromkeys(chosen)]
