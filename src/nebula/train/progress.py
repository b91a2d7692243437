"""The progress bar as a callback: steps of the whole run, the running mean of each loss term."""

from __future__ import annotations

from typing import Any

from tqdm.auto import tqdm

from nebula.train.callbacks import Callback


class ProgressBar(Callback):
    """A tqdm bar over every step of the run (rank 0, unless ``quiet``), updated each step; the running
    loss means are shown every 5 steps."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar: Any = None

    def on_fit_start(self, trainer: Any) -> None:
        done = trainer.start_epoch * trainer.steps_per_epoch + trainer.resume_step
        self.bar = tqdm(total=trainer.tc.epochs * trainer.steps_per_epoch, initial=done,
                        disable=self.quiet or trainer.rank != 0, desc="train", unit="step", dynamic_ncols=True,
                        leave=False)

    def on_step_end(self, trainer: Any, epoch: int, step: int, out: Any) -> None:
        bar = self.bar
        bar.update(1)
        if step % 5 == 0 and not bar.disable:
            bar.set_postfix({k: f"{float(v) / (step + 1):.3g}" for k, v in trainer.sums.totals().items()}, refresh=False)

    def on_fit_end(self, trainer: Any) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
