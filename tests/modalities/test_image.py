"""The image record's encoder choice (``model.arch = auto``): conv from 16x16, MLP below and for tabular rows."""

from __future__ import annotations

import json

import numpy as np
import torch

import nebula
from nebula.data.base import NebulaDataset
from nebula.modalities import resolve_architecture
from nebula.nn.conv import ConvEncoder
from nebula.nn.mlp import MLPEncoder
from tests.reliability.helpers import tiny_config, tiny_images


def test_auto_picks_conv_from_16x16_and_mlp_below():
    assert resolve_architecture("image", "auto", "auto", "auto", (1, 16, 16))[:2] == ("conv", "conv")
    assert resolve_architecture("image", "auto", "auto", "auto", (3, 32, 20))[:2] == ("conv", "conv")
    assert resolve_architecture("image", "auto", "auto", "auto", (1, 8, 8))[:2] == ("mlp", "mlp")
    assert resolve_architecture("image", "auto", "auto", "auto", (1, 1, 617))[:2] == ("mlp", "mlp")
    assert resolve_architecture("image", "auto", "auto", "auto", (1, 15, 64))[:2] == ("mlp", "mlp")
    assert resolve_architecture("image", "mlp", "auto", "auto", (1, 28, 28))[:2] == ("mlp", "mlp")
    assert resolve_architecture("tabular", "auto", "auto", "auto", (40,))[:2] == ("mlp", "mlp")


def _images(side: int) -> NebulaDataset:
    x, y = tiny_images(40, side=side)
    split = (np.arange(40) % 5 == 4).astype(np.int8)
    return NebulaDataset(x=torch.from_numpy(x[:, None].astype(np.float32) / 255.0), y=y, split=split,
                         meta={"modality": "image", "name": f"tiny{side}", "source": "tiny"})


def test_a_16x16_run_trains_the_narrow_conv_and_loads_back(tmp_path):
    cfg = tiny_config(tmp_path / "run", epochs=2, min_steps=0)
    run = nebula.train(cfg, dataset=_images(16))
    assert isinstance(run.model.encoder, ConvEncoder) and run.model.encoder.channels == [16, 32, 64]
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["architecture"]["encoder"] == "conv"
    loaded = nebula.load(tmp_path / "run")
    assert isinstance(loaded.model.encoder, ConvEncoder)


def test_an_auto_run_loads_with_the_encoder_it_recorded(tmp_path):
    """A run folder whose config says ``arch: auto`` is rebuilt with run.json's encoder, whatever auto picks now."""
    cfg = tiny_config(tmp_path / "run", epochs=2, min_steps=0)
    cfg.model.arch = "mlp"
    nebula.train(cfg, dataset=_images(16))
    path = tmp_path / "run" / "config.yaml"
    path.write_text(path.read_text().replace("arch: mlp", "arch: auto").replace("decoder: mlp", "decoder: auto"))
    assert "arch: auto" in path.read_text()
    loaded = nebula.load(tmp_path / "run")
    assert isinstance(loaded.model.encoder, MLPEncoder)


def test_a_conv_run_with_the_former_widths_loads_with_them(tmp_path):
    """A -c image run saved with [32, 64, 128] (the generic widths before images' [16, 32, 64]) loads as trained."""
    cfg = tiny_config(tmp_path / "run", epochs=1, min_steps=0)
    cfg.model.arch, cfg.model.channels = "conv", [32, 64, 128]
    nebula.train(cfg, dataset=_images(16))
    assert nebula.load(tmp_path / "run").model.encoder.channels == [32, 64, 128]


def test_voxels_keep_their_conv_widths():
    from nebula.config import Config
    from nebula.modalities import apply_config_defaults

    cfg = Config()
    apply_config_defaults(cfg, "voxels")
    assert cfg.model.channels == [32, 64, 128]
    apply_config_defaults(image := Config(), "image")
    assert image.model.channels == [16, 32, 64]
