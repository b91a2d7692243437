"""ClustPy's deep-clustering methods (DEC, IDEC, DCN) on one data set, for ``python -m benchmarks clustering``.

Runs in the peers' environment (``.venv-peers/bin/python``: torch + torchvision + clustpy), which does not
have nebula: it reads the samples from an ``.npz`` (``x`` (N, F) float32, ``y`` (N,) int64) and prints
one JSON line per (method, seed): ``{"method", "seed", "labels", "seconds"}``; metrics are computed by the
caller. ClustPy defaults throughout (feed-forward AE 500-500-2000-d, d = 10, pre-training 100 epochs,
clustering 150 epochs, batch 256) unless ``--pretrain-epochs`` / ``--clustering-epochs`` say otherwise.

    .venv-peers/bin/python benchmarks/clustering_peers.py data.npz --methods dec,idec,dcn --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data")
    p.add_argument("--methods", default="dec,idec,dcn")
    p.add_argument("--seeds", default="0")
    p.add_argument("--clusters", type=int, default=0, help="number of clusters (default: number of labels)")
    p.add_argument("--pretrain-epochs", type=int, default=0, help="0: ClustPy's default")
    p.add_argument("--clustering-epochs", type=int, default=0, help="0: ClustPy's default")
    args = p.parse_args()
    import torch
    from clustpy.deep import DCN, DEC, IDEC

    torch.set_num_threads(max(1, int(__import__("os").environ.get("OMP_NUM_THREADS", "1"))))
    classes = {"dec": DEC, "idec": IDEC, "dcn": DCN}
    with np.load(args.data) as f:
        x, y = f["x"].astype(np.float32), f["y"]
    k = args.clusters or len(np.unique(y))
    for method in args.methods.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            kwargs = {"n_clusters": k, "random_state": seed, "device": "cpu"}
            if args.pretrain_epochs:
                kwargs["pretrain_epochs"] = args.pretrain_epochs
            if args.clustering_epochs:
                kwargs["clustering_epochs"] = args.clustering_epochs
            t0 = time.perf_counter()
            model = classes[method](**kwargs).fit(x)
            seconds = time.perf_counter() - t0
            print(json.dumps({"method": method, "seed": seed, "labels": np.asarray(model.labels_).astype(int).tolist(),
                              "seconds": seconds}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
