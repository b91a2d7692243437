from __future__ import annotations

import pytest

from nebula.config import VARIANTS, Config
from nebula.errors import ConfigError


def test_yaml_round_trip(tmp_path):
    cfg = Config()
    cfg.apply_variant("nvc-ml").override(["train.lr=1e-3", "model.hidden=[64, 32]", "data.options={labels: fine}", "output=runs/x"])
    cfg.to_yaml(tmp_path / "c.yaml")
    back = Config.from_yaml(tmp_path / "c.yaml")
    assert back == cfg
    assert back.train.lr == 1e-3 and back.model.hidden == [64, 32] and back.data.options == {"labels": "fine"}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_variants_round_trip_by_name(name):
    assert Config().apply_variant(name).variant == name


def test_unknown_key_suggests_closest():
    with pytest.raises(ConfigError, match=r"did you mean 'train.lr'"):
        Config().override(["train.lrr=3"])
    with pytest.raises(ConfigError, match=r"did you mean 'model.latent_dim'"):
        Config.from_dict({"model": {"latent_dimm": 3}})
    with pytest.raises(ConfigError, match="unknown variant"):
        Config().apply_variant("tvea")


@pytest.mark.parametrize("assignment, message", [
    ("train.lr=0", "train.lr must be > 0"),
    ("train.lr=-1", "train.lr must be > 0"),
    ("model.num_anchors=0", "num_anchors must be >= 1"),
    ("loss.metric_order=5", "metric_order"),
])
def test_invalid_values(assignment, message):
    with pytest.raises(ConfigError, match=message):
        Config().override([assignment]).validate()


def test_batch_of_one_with_metric_learning_is_refused():
    cfg = Config().apply_variant("nvc-ml").override(["train.batch_size=1"])
    with pytest.raises(ConfigError, match="batch_size must be >= 2"):
        cfg.validate()


def test_type_errors_are_clear():
    with pytest.raises(ConfigError, match="expects an integer"):
        Config().override(["train.epochs=ten"])
    with pytest.raises(ConfigError, match="expects true/false"):
        Config().override(["model.variational=maybe"])
    with pytest.raises(ConfigError, match="key=value"):
        Config().override(["train.epochs"])
