"""B2: training throughput on the 10,000 MNIST test images, MLP 784-512-256-128, feature 64, d = 32.

Systems, all with batch 256, Adam lr 2e-3, the same encoder/decoder modules (nebula.nn.mlp, batch norm):

* ``nebula nvc-ml`` / ``nebula tvae``: :class:`nebula.train.trainer.Trainer` + NebulaCoder (m = 30 anchors
  from the first step, nvc-ml adds the order -1 ratio metric loss), one ``fit`` epoch per measurement.
* ``pythae vae``: the same modules as a pythae ``VAE`` (BCE) trained by pythae's ``BaseTrainer.train_step``
  (its DataLoader over ``BaseDataset``, its Adam) - a plain VAE, less work per step than nvc-ml.
* ``minimal loop vae``: a hand-written PyTorch loop (tensor data, randperm batches, default Adam).

Every figure is a full epoch (39 batches of 256 + one of 16; forward, backward, optimiser step), measured
round-robin: each round runs every system once, each epoch right after its own float32 matmul peak
measurement (best of 3 2048 x 2048 matmuls, same threads), so an epoch and the peak it is divided by see
the same machine load. The fraction of the peak quoted is the median over rounds of those paired
fractions; the fraction of the best matmul of the whole run is the conservative bound. FLOPs per sample
are counted from the Linear layer shapes: 2 in out forward, 2 in out for the weight gradient, 2 in out
for the input gradient (not for the first layer): batch norm, activations, losses and the optimiser are
not counted.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from benchmarks import common

DATA = common.ROOT.parent / "shared" / "data" / "mnist_test"
LATENT, ANCHORS, FEATURE, BATCH, LR, BETA = 32, 30, 64, 256, 2e-3, 0.1


def load_mnist(limit: int | None = None):
    from nebula.data import load

    if not DATA.exists():
        raise SystemExit(f"{DATA}: MNIST test images not found (see ../shared/data/README.md)")
    ds = load(str(DATA))
    if limit is not None:
        ds = ds.subset(np.arange(limit))
    ds.split = np.zeros(len(ds), np.int8)  # train on every image
    return ds


def nebula_config(variant: str):
    from nebula.config import Config

    cfg = Config()
    cfg.apply_variant(variant)
    cfg.data.augment = {}
    cfg.model.latent_dim, cfg.model.num_anchors, cfg.model.feature_dim = LATENT, ANCHORS, FEATURE
    cfg.model.hidden = [512, 256, 128]
    t = cfg.train
    t.batch_size, t.lr, t.pretrain_epochs, t.anchor_init = BATCH, LR, 0, "random"
    t.quiet, t.device, t.epochs, t.figures = True, "cpu", 1, False
    cfg.loss.beta = BETA
    return cfg


class NebulaSystem:
    """One epoch of nebula's Trainer per call."""

    def __init__(self, variant: str, ds) -> None:
        from nebula.run import build_model
        from nebula.train.trainer import Trainer

        torch.manual_seed(0)
        self.cfg = nebula_config(variant)
        self.model = build_model(self.cfg, ds)
        self.trainer = Trainer(self.model, ds, self.cfg)
        self.epoch = 0

    def __call__(self) -> None:
        self.trainer.start_epoch = self.epoch
        self.cfg.train.epochs = self.epoch + 1
        self.trainer.fit()
        self.epoch += 1


def plain_vae_modules(input_shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module, nn.Module, nn.Module]:
    """Encoder, mu head, log-sigma head, decoder: the architecture nebula builds (shared nebula.nn.mlp)."""
    from nebula.nn.mlp import MLPDecoder, MLPEncoder

    enc = MLPEncoder(input_shape, [512, 256, 128], FEATURE)
    dec = MLPDecoder(LATENT, input_shape, [512, 256, 128], FEATURE)
    return enc, nn.Linear(FEATURE, LATENT), nn.Linear(FEATURE, LATENT), dec


class MinimalLoop:
    """A hand-written VAE loop: x as one tensor, randperm batches, BCE + beta KL, torch.optim.Adam defaults."""

    def __init__(self, ds) -> None:
        torch.manual_seed(0)
        self.x = ds.x
        self.enc, self.mu, self.ls, self.dec = plain_vae_modules(tuple(ds.x.shape[1:]))
        self.params = [p for m in (self.enc, self.mu, self.ls, self.dec) for p in m.parameters()]
        self.opt = torch.optim.Adam(self.params, lr=LR)

    def __call__(self) -> None:
        perm = torch.randperm(len(self.x))
        for i in range(0, len(perm), BATCH):
            x = self.x[perm[i : i + BATCH]]
            if len(x) < 2:
                continue
            h = self.enc(x)
            mu, log_sigma = self.mu(h), self.ls(h).clamp(-10, 5)
            z = mu + log_sigma.exp() * torch.randn_like(mu)
            logits = self.dec(z)
            rec = nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
            kl = -0.5 * (1 + 2 * log_sigma - mu.pow(2) - (2 * log_sigma).exp()).sum(1)
            loss = (rec + BETA * kl).mean()
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()


class PythaeSystem:
    """The same modules as a pythae VAE, one epoch of pythae's BaseTrainer.train_step per call."""

    def __init__(self, ds, workdir: Path) -> None:
        from pythae.data.datasets import BaseDataset
        from pythae.models import VAE, VAEConfig
        from pythae.models.base.base_utils import ModelOutput
        from pythae.models.nn import BaseDecoder, BaseEncoder
        from pythae.trainers import BaseTrainer, BaseTrainerConfig

        shape = tuple(ds.x.shape[1:])
        enc, mu, ls, dec = plain_vae_modules(shape)

        class Encoder(BaseEncoder):
            def __init__(self) -> None:
                super().__init__()
                self.net, self.mu, self.ls = enc, mu, ls

            def forward(self, x):
                h = self.net(x)
                return ModelOutput(embedding=self.mu(h), log_covariance=2.0 * self.ls(h).clamp(-10, 5))

        class Decoder(BaseDecoder):
            def __init__(self) -> None:
                super().__init__()
                self.net = dec

            def forward(self, z):
                return ModelOutput(reconstruction=torch.sigmoid(self.net(z)))

        torch.manual_seed(0)
        config = VAEConfig(input_dim=shape, latent_dim=LATENT, reconstruction_loss="bce")
        model = VAE(config, encoder=Encoder(), decoder=Decoder())
        train = BaseDataset(ds.x, torch.as_tensor(ds.y))
        tc = BaseTrainerConfig(output_dir=str(workdir), per_device_train_batch_size=BATCH, num_epochs=1,
                               learning_rate=LR, no_cuda=True, train_dataloader_num_workers=0)
        self.trainer = BaseTrainer(model=model, train_dataset=train, training_config=tc)
        self.trainer.prepare_training()
        handler = self.trainer.callback_handler  # no progress bars in the measured loop
        handler.callbacks = [c for c in handler.callbacks if "ProgressBar" not in type(c).__name__]
        self.epoch = 0

    def __call__(self) -> None:
        self.epoch += 1
        self.trainer.train_step(self.epoch)


def linear_flops_per_sample(model: nn.Module, first: nn.Linear) -> int:
    """Training FLOPs per sample of every nn.Linear in ``model``: 6 in out, minus 2 in out for ``first``
    (no gradient w.r.t. the input data)."""
    total = 0
    for m in model.modules():
        if isinstance(m, nn.Linear):
            total += 6 * m.in_features * m.out_features
    return total - 2 * first.in_features * first.out_features


def matmul_gflops(n: int = 2048, repeats: int = 3) -> float:
    """Best of ``repeats`` float32 n x n matmuls, GFLOP/s (2 n^3 FLOPs each)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = common.machine_info()
    print(common.header("B2 training throughput", started), flush=True)
    ds = load_mnist()
    n = len(ds)
    systems: dict[str, Any] = {"nebula nvc-ml": NebulaSystem("nvc-ml", ds), "nebula tvae": NebulaSystem("tvae", ds)}
    tmp = tempfile.TemporaryDirectory()
    try:
        systems["pythae vae"] = PythaeSystem(ds, Path(tmp.name))
    except ImportError:
        print("  pythae not installed (pip install -c constraints.txt -e .[bench]): skipped")
    systems["minimal loop vae"] = MinimalLoop(ds)
    ref = systems["nebula nvc-ml"].model
    flops = linear_flops_per_sample(ref.encoder, ref.encoder.net[1]) + linear_flops_per_sample(ref.head, ref.head.mu) \
        + 2 * 2 * ref.head.mu.in_features * ref.head.mu.out_features + linear_flops_per_sample(ref.decoder, ref.decoder.net[0]) \
        + 2 * ref.decoder.net[0].in_features * ref.decoder.net[0].out_features
    for name, fn in systems.items():  # warm-up epoch
        for _ in range(args.warmup):
            fn()
        print(f"  warmed up {name}", flush=True)
    epochs: dict[str, list[float]] = {k: [] for k in systems}
    paired: dict[str, list[float]] = {k: [] for k in systems}  # the matmul peak measured just before each epoch
    for r in range(args.repeats):
        for name, fn in systems.items():
            paired[name].append(matmul_gflops())
            t0 = time.perf_counter()
            fn()
            epochs[name].append(time.perf_counter() - t0)
        print(f"  round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s (matmul {paired[k][-1]:.0f})" for k, v in epochs.items())
              + " GFLOP/s", flush=True)
    tmp.cleanup()
    peaks = [g for v in paired.values() for g in v]
    peak = common.summarise(peaks)
    rows = []
    for name, times in epochs.items():
        t = common.summarise(times)
        sps = n / t["median"]
        fractions = [n * flops / 1e9 / (dt * g) for dt, g in zip(times, paired[name])]
        rows.append({"system": name, "epoch_seconds": t, "samples_per_s": sps,
                     "samples_per_s_min_max": [n / t["max"], n / t["min"]], "gflops": sps * flops / 1e9,
                     "paired_matmul_gflops": paired[name], "fraction_of_paired_matmul": common.summarise(fractions),
                     "fraction_of_matmul_peak": statistics.median(fractions),
                     "fraction_of_best_matmul": sps * flops / 1e9 / peak["max"]})
    by = {r["system"]: r for r in rows}
    ratios = {}
    if "pythae vae" in by:
        # pairwise: per round, so both saw the same load
        pair = [p / q for p, q in zip(epochs["pythae vae"], epochs["nebula nvc-ml"])]
        ratios["nvc-ml / pythae vae throughput (median of per-round ratios)"] = statistics.median(pair)
        ratios["per_round"] = pair
    ratios["nvc-ml / minimal loop (median of per-round ratios)"] = statistics.median(
        [p / q for p, q in zip(epochs["minimal loop vae"], epochs["nebula nvc-ml"])])
    body = [[r["system"], f"{r['samples_per_s']:.0f}", f"{r['samples_per_s_min_max'][0]:.0f} / {r['samples_per_s_min_max'][1]:.0f}",
             f"{r['gflops']:.1f}", f"{100 * r['fraction_of_matmul_peak']:.1f}%",
             f"{100 * r['fraction_of_paired_matmul']['min']:.0f}-{100 * r['fraction_of_paired_matmul']['max']:.0f}%",
             f"{100 * r['fraction_of_best_matmul']:.0f}%"] for r in rows]
    print(common.table(["system", "samples/s (median)", "min / max", "GFLOP/s", "of paired matmul (median)",
                        "per round", "of best matmul"], body))
    print(f"matmul 2048^2 float32 (all rounds): median {peak['median']:.1f} GFLOP/s (min {peak['min']:.1f}, max {peak['max']:.1f}); "
          f"{flops / 1e6:.2f} MFLOP per training sample")
    for k, v in ratios.items():
        if k != "per_round":
            print(f"{k}: {v:.2f}x")
    payload = {"config": {"data": str(DATA), "samples": n, "batch": BATCH, "latent": LATENT, "anchors": ANCHORS,
                          "feature": FEATURE, "hidden": [512, 256, 128], "lr": LR, "warmup_epochs": args.warmup,
                          "rounds": args.repeats, "flops_per_sample": flops},
               "matmul_gflops": peak, "rows": rows, "ratios": ratios}
    path = common.write_result(args.result_name, payload, started)
    print(f"wrote {path}")
    return payload


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--warmup", type=int, default=1, help="unmeasured epochs per system")
    p.add_argument("--repeats", type=int, default=9, help="measured rounds (one epoch of every system each)")
    p.add_argument("--result-name", default="training", help="write benchmarks/results/<name>.json")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.training", description=__doc__.splitlines()[0])
    add_arguments(p)
    run(p.parse_args(argv))


if __name__ == "__main__":
    main()
