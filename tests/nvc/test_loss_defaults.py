"""NebulaLoss is usable without a Config, so its keyword defaults are literals: they must stay LossConfig's."""

from __future__ import annotations

import dataclasses
import inspect

from nebula.config import LossConfig
from nebula.nvc.loss import NebulaLoss

#: LossConfig's value is resolved before it reaches NebulaLoss ("auto" -> nearest or partition)
RESOLVED = {"pseudo_labels"}


def test_nebula_loss_defaults_are_loss_config_defaults() -> None:
    config = {f.name: f.default for f in dataclasses.fields(LossConfig)}
    shared = [(name, p.default) for name, p in inspect.signature(NebulaLoss.__init__).parameters.items()
              if p.default is not inspect.Parameter.empty and name in config and name not in RESOLVED]
    assert len(shared) >= 10  # anchor, repulsion, metric and balance options
    assert {name: value for name, value in shared} == {name: config[name] for name, _ in shared}
