"""The README's building-block example (a user's own CNN trained with ``nebula.NebulaLoss``) against
``nebula train`` with the same CNN (registered as encoder and decoder), budget and placement.

    python -m benchmarks.building_block [--seeds 0,1,2]

For each seed: the README block is run as written with ``torch.manual_seed(seed)``; then ``nebula.train``
trains the tae variant with the block's own encoder (without its last Linear, which nebula's latent head
provides) and decoder, the same epochs, pre-training, batch, learning rate (constant), t-SNE placement,
nearest-anchor pseudo-labels and dead-anchor delay, no augmentation, on 99% of the digits. Both are scored by the Hungarian accuracy of the nearest-anchor
assignment of all 1,797 digits. Prints the table and writes benchmarks/results/building_block.json.
"""

from __future__ import annotations

import argparse
import copy
import re
import time
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example() -> str:
    """The python block under the README's "Building blocks" heading."""
    text = README.read_text()
    section = text[text.index("### Building blocks"):]
    return re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)


def run_example(seed: int) -> dict:
    code = readme_example().replace("torch.manual_seed(0)", f"torch.manual_seed({seed})")
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - the README's own example
    return scope


def nebula_run(seed: int, scope: dict) -> np.ndarray:
    import torch
    from torch import nn

    from nebula.config import Config
    from nebula.registry import register
    from nebula.run import train

    torch.manual_seed(seed)
    fresh = {}
    code = readme_example()
    exec(compile(code[: code.index("nebula_loss =")], "README.md", "exec"), fresh)  # noqa: S102 - definitions only
    encoder, decoder = fresh["encoder"], fresh["decoder"]

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body, self.out_features = copy.deepcopy(encoder[:-1]), encoder[-1].in_features

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x)

    class Decoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = copy.deepcopy(decoder)

        def forward(self, z: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
            return self.body(z)

    register("encoder", "readme-cnn", lambda input_shape, cfg: Encoder())
    register("decoder", "readme-cnn", lambda n_in, shape, cfg, enc: Decoder())
    cfg = Config().apply_variant("tae")
    cfg.model.arch = cfg.model.decoder = "readme-cnn"
    cfg.model.latent_dim, cfg.model.num_anchors = 10, 10
    cfg.train.epochs, cfg.train.pretrain_epochs, cfg.train.batch_size, cfg.train.lr = 40, 10, 256, 2e-3
    cfg.train.lr_schedule, cfg.train.anchor_init, cfg.train.seed = "constant", "tsne", seed
    cfg.train.placement_map = "input"  # the README loop maps its inputs
    cfg.train.quiet, cfg.train.figures, cfg.train.device = True, False, "cpu"
    cfg.data.augment, cfg.data.test_fraction = {}, 0.01
    # the README loop's mechanism: batch 256 whatever the set's size, nearest-anchor pseudo-labels (not nebula's
    # default partition labels of t-SNE placements), NebulaLoss's dead_after of 200 steps (7 steps an epoch)
    cfg.train.min_steps, cfg.loss.pseudo_labels, cfg.loss.dead_after_epochs = 0, "nearest", 200 / 7
    return train(cfg).embeddings["assign"]


def main(argv: list[str] | None = None) -> int:
    from sklearn.datasets import load_digits

    from benchmarks import common
    from nebula.evaluate.metrics import hungarian_accuracy

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0,1,2")
    args = p.parse_args(argv)
    started = common.machine_info()
    y = load_digits().target
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        t0 = time.perf_counter()
        scope = run_example(seed)
        t1 = time.perf_counter()
        own = hungarian_accuracy(y, scope["labels"].numpy())
        ours = hungarian_accuracy(y, nebula_run(seed, scope))
        rows.append({"seed": seed, "example_acc": own, "nebula_train_acc": ours, "example_s": t1 - t0,
                     "nebula_s": time.perf_counter() - t1})
        print(f"seed {seed}: README example ACC {own:.4f} ({t1 - t0:.0f} s), nebula train ACC {ours:.4f}", flush=True)
    a = np.array([r["example_acc"] for r in rows])
    b = np.array([r["nebula_train_acc"] for r in rows])
    print(f"mean over {len(rows)} seeds: README example {a.mean():.4f} +- {a.std():.4f}, nebula train "
          f"{b.mean():.4f} +- {b.std():.4f}, difference {a.mean() - b.mean():+.4f}")
    common.write_result("building_block", {"rows": rows, "example_mean": float(a.mean()),
                                           "nebula_train_mean": float(b.mean()),
                                           "difference": float(a.mean() - b.mean())}, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
