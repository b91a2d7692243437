"""An nvc-ml translation run interrupted during the learning-rate warm-up resumes to the same result."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from nebula.run import train
from nebula.train.trainer import Trainer, TrainingInterrupted
from tests.translation.helpers import copy_corpus, tiny_config


def test_interrupted_translation_run_resumes_exactly(tmp_path, monkeypatch):
    data = copy_corpus(tmp_path / "data", train=160, test=8)

    def config(name: str):
        cfg = tiny_config(data, tmp_path / name, epochs=4, train__batch_size=16, train__pretrain_epochs=1,
                          translation__dropout=0.1, translation__warmup_steps=10)
        cfg.apply_variant("nvc-ml")
        cfg.model.num_anchors = 3
        return cfg

    reference = train(config("a"))
    original, seen = Trainer.make_batch, {"n": 0}

    def make_batch(self, index, epoch=0, step=0):
        seen["n"] += 1
        if seen["n"] == 3:  # during the warm-up (4 steps: a tenth of 40)
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, index, epoch, step)

    monkeypatch.setattr(Trainer, "make_batch", make_batch)
    with pytest.raises(TrainingInterrupted):
        train(config("b"))
    monkeypatch.undo()
    resumed = train(config("b"), resume=True)
    np.testing.assert_allclose(resumed.embeddings["z"], reference.embeddings["z"], atol=1e-5)
    a = (tmp_path / "a" / "metrics.csv").read_text().splitlines()
    b = (tmp_path / "b" / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[:5] for r in a] == [r.split(",")[:5] for r in b]
