"""Progress as a callback: a bar over the steps of the whole run named by its epoch (``epoch 3/100``), the
running mean of each loss term, and a summary line per epoch (at most about 20 lines a run)."""

from __future__ import annotations

import math
from typing import Any

from tqdm.auto import tqdm

from nebula.train.callbacks import Callback


class ProgressBar(Callback):
    """A tqdm bar over every step of the run (rank 0, unless ``quiet``), updated each step; the running
    loss means are shown every 5 steps. After the first epoch, every ``ceil(epochs / 20)``-th and the last,
    one line ``epoch e/E  loss ...  (s)`` is written above the bar."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar: Any = None

    def on_fit_start(self, trainer: Any) -> None:
        done = trainer.start_epoch * trainer.steps_per_epoch + trainer.resume_step
        self.bar = tqdm(total=trainer.tc.epochs * trainer.steps_per_epoch, initial=done,
                        disable=self.quiet or trainer.rank != 0, desc="train", unit="step", dynamic_ncols=True,
                        leave=False)

    def on_epoch_start(self, trainer: Any, epoch: int, resumed: bool) -> None:
        if self.bar is not None and not self.bar.disable:
            self.bar.set_description(f"epoch {epoch + 1}/{trainer.tc.epochs}", refresh=False)

    def on_epoch_end(self, trainer: Any, epoch: int, row: dict[str, Any]) -> None:
        if self.bar is None or self.bar.disable:
            return
        epochs = trainer.tc.epochs
        every = max(1, math.ceil(epochs / 20))
        if (epoch + 1) % every == 0 or epoch + 1 == epochs or epoch == trainer.start_epoch:
            tqdm.write(epoch_line(row, epochs))

    def on_step_end(self, trainer: Any, epoch: int, step: int, out: Any) -> None:
        bar = self.bar
        bar.update(1)
        if step % 5 == 0 and not bar.disable:
            bar.set_postfix({k: f"{float(v) / (step + 1):.3g}" for k, v in trainer.sums.totals().items()}, refresh=False)

    def on_fit_end(self, trainer: Any) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def epoch_line(row: dict[str, Any], epochs: int) -> str:
    """``epoch 3/100  loss 26.4  rec 25.5  kl 2.68  near 0.574  (0.9 s)`` for one metrics.csv row."""
    keys = sorted((k for k in row if k not in ("epoch", "lr", "seconds", "reseeded")), key=lambda k: k != "loss")
    terms = "  ".join(f"{k} {float(row[k]):.4g}" for k in keys
                      if isinstance(row[k], (int, float)) and math.isfinite(float(row[k])))
    return f"epoch {int(row['epoch'])}/{epochs}  {terms}  ({float(row.get('seconds', 0.0)):.1f} s)"
