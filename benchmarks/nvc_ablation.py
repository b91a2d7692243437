"""NVC clustering ablation on a dataset: nearest-anchor and k-means Hungarian accuracy / NMI over seeds.

    python benchmarks/nvc_ablation.py tvae [section.key=value ...] [--seeds 0,1,2] [--data digits]

Prints one line: mean +- std over seeds of the nearest-anchor accuracy, its NMI, k-means (k = number of
classes, n_init 10) accuracy on the latents, the per-seed accuracies and the training time; every figure
is computed from the run's embeddings (all samples). Used for docs/clustering.md.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from nebula.config import Config
from nebula.evaluate.metrics import hungarian_accuracy, kmeans_labels
from nebula.run import train


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("variant")
    p.add_argument("overrides", nargs="*", help="section.key=value")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--data", default="digits")
    args = p.parse_args()
    from sklearn.metrics import normalized_mutual_info_score

    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        cfg = Config().apply_variant(args.variant)
        cfg.data.source = args.data
        cfg.train.quiet, cfg.train.figures, cfg.train.seed = True, False, seed
        cfg.override(args.overrides)
        t0 = time.perf_counter()
        emb = train(cfg).embeddings
        seconds = time.perf_counter() - t0
        y, assign = emb["y"], emb["assign"]
        k = len(np.unique(y))
        km = kmeans_labels(emb["z"], k, seed=0)
        has_anchors = assign.min() >= 0
        rows.append((hungarian_accuracy(y, assign) if has_anchors else np.nan,
                     normalized_mutual_info_score(y, assign) if has_anchors else np.nan,
                     hungarian_accuracy(y, km), seconds))
    a = np.array(rows)
    print(f"{args.variant} {' '.join(args.overrides)} | anchor acc {a[:, 0].mean():.3f} +- {a[:, 0].std():.3f} "
          f"nmi {a[:, 1].mean():.3f} | k-means acc {a[:, 2].mean():.3f} +- {a[:, 2].std():.3f} | "
          f"per seed {np.round(a[:, 0], 3).tolist()} | {a[:, 3].mean():.1f} s/run")


if __name__ == "__main__":
    main()
