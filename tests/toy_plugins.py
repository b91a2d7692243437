"""A toy modality and a toy method, registered from outside the package (no file under src/ knows them).

* modality ``toyvec``: text files ``*.toy`` with one sample a line, ``label;v1 v2 ... vF`` (F floats); a
  linear encoder and decoder, an L1 reconstruction, an evaluator ``toy-stats``;
* method ``toy-ae``: a deterministic linear autoencoder (family ``toy``), z = W x.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nebula.data.base import NebulaDataset, register_format
from nebula.errors import DataError
from nebula.evaluate.evaluator import register_evaluator
from nebula.losses.reconstruction import register_reconstruction
from nebula.methods.spec import DataShapes, MethodSpec, register_method
from nebula.modalities.record import Modality, register_modality
from nebula.registry import _REGISTRIES, register
from nebula.train.contract import ModelOutput, StepInfo

NAMES = [("data format", "toy"), ("modality", "toyvec"), ("encoder", "toy-linear"), ("decoder", "toy-linear"),
         ("reconstruction loss", "toy-l1"), ("evaluator", "toy-stats"), ("method", "toy-ae")]


@register_format("toy", "toyvec", lambda p: p.is_file() and p.suffix == ".toy", priority=50)
def load_toy(path: Path, **options: Any) -> NebulaDataset:
    rows = [line.split(";") for line in path.read_text().splitlines() if line.strip()]
    try:
        y = np.array([int(r[0]) for r in rows])
        x = np.array([[float(v) for v in r[1].split()] for r in rows], np.float32)
    except (ValueError, IndexError):
        raise DataError(f"{path}: expected lines 'label;v1 v2 ...'") from None
    return NebulaDataset(x=torch.from_numpy(x), y=y, split=None, meta={"modality": "toyvec"})


class Linear(nn.Module):
    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.layer, self.out_features = nn.Linear(n_in, n_out), n_out

    def forward(self, x: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        return self.layer(x.flatten(1))


register("encoder", "toy-linear", lambda input_shape, cfg: Linear(int(np.prod(input_shape)), cfg.feature_dim))
register("decoder", "toy-linear", lambda n_in, output_shape, cfg, encoder: Linear(n_in, int(np.prod(output_shape))))


@register_reconstruction("toy-l1")
def l1(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (output - target.flatten(1)).abs().sum(1)


@register_evaluator("toy-stats")
def toy_stats(run: Any, dataset: Any) -> dict[str, Any]:
    z = run.embeddings["z"]
    return {"mean_norm": float(np.linalg.norm(z, axis=1).mean()), "samples": int(len(dataset))}


register_modality(Modality("toyvec", encoder="toy-linear", decoder="toy-linear", reconstruction="toy-l1",
                           evaluators=("toy-stats",), anchor_init="kmeans"))


class ToyAutoencoder(nn.Module):
    """z = W x (N, 2), x_hat = V z; loss = mean squared error."""

    def __init__(self, features: int, latent: int = 2) -> None:
        super().__init__()
        self.enc, self.dec = nn.Linear(features, latent), nn.Linear(latent, features)

    def forward(self, batch: dict[str, torch.Tensor], info: StepInfo) -> ModelOutput:
        x = batch["x"].flatten(1)
        z = self.enc(x)
        rec = (self.dec(z) - x).pow(2).sum(1).mean()
        return ModelOutput(loss=rec, terms={"rec": rec.detach()}, z=z, mu=z)

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.enc(x.flatten(1))

    @torch.no_grad()
    def embedding_batch(self, x: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.embed(x)
        return {"z": z, "assign": torch.full((len(z),), -1, dtype=torch.long)}


def build_toy(cfg: Any, shapes: DataShapes) -> ToyAutoencoder:
    return ToyAutoencoder(int(np.prod(shapes.input_shape)))


register_method(MethodSpec("toy-ae", family="toy", build=build_toy))


def unregister_all() -> None:
    for kind, name in NAMES:
        _REGISTRIES[kind].unregister(name)


def write_toy_file(path: Path, n: int = 60, features: int = 6, seed: int = 0) -> Path:
    """n samples of 3 classes: class means 0, 3, 6 on the first feature, noise elsewhere."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.normal(size=(n, features)) * 0.3
    x[:, 0] += 3.0 * y
    path.write_text("\n".join(f"{c};{' '.join(f'{v:.4f}' for v in row)}" for c, row in zip(y, x)) + "\n")
    return path
