"""Which t-SNE map, and which cut of it, places the anchors better: the inputs' or the autoencoder latents'
map, cut by k-means or by Ward linkage?

    python -m benchmarks.latent_maps [--sets jaffe,umist,...] [--epochs 40] [--seed 0] [--cuts kmeans,ward]

For each set, nebula's ``ae`` trains ``--epochs`` epochs on all samples (the warm-up a tvae / nvc-ml run of
2 x that many epochs makes before it places its anchors); then, on at most 5,000 samples, both 2-D t-SNE maps
(perplexity :func:`nebula.latent.placement.tsne_perplexity`) are cut into k = classes parts by each of
``--cuts`` (:func:`nebula.latent.placement.map_partition`). Printed per set: each map and cut's Hungarian ACC
against the labels and its silhouette, and what ``train.placement_map=auto`` with ``train.placement_cut=auto``
takes (:func:`nebula.latent.placement.auto_cut` on each map, then the better separated map; the inputs'
map only below ``LATENT_MAP_MIN_SAMPLES`` samples). The labels only
score; nothing chooses by them. Results: benchmarks/results/latent_maps.json.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from benchmarks import clustering, common


def compare(name: str, epochs: int, seed: int, cuts: list[str]) -> dict | None:
    from nebula.config import Config
    from nebula.evaluate.metrics import hungarian_accuracy
    from nebula.latent import placement
    from nebula.run import train

    ds = clustering.load_set(name)
    if ds is None:
        print(f"{name}: skipped (not in {clustering.SHARED})", flush=True)
        return None
    k = ds.num_classes
    cfg = Config().apply_variant("ae")
    cfg.model.num_anchors = k
    cfg.train.quiet, cfg.train.figures, cfg.train.seed, cfg.train.epochs = True, False, seed, epochs
    t0 = time.perf_counter()
    z = train(cfg, dataset=clustering.fit_all(ds)).embeddings["z"]
    seconds = time.perf_counter() - t0
    idx = np.random.RandomState(seed).permutation(len(ds))[: placement.TSNE_SAMPLES]
    x = torch.from_numpy(clustering.flat_input(ds)[idx])
    row: dict = {"set": name, "samples": len(idx), "classes": k, "ae_seconds": seconds}
    candidates = []
    for space, feats in (("inputs", x), ("latents", torch.from_numpy(z[idx]))):
        emb = placement.tsne_map(feats, k, seed)
        for cut in cuts:
            parts = placement.map_partition(emb, k, seed, cut)
            row[f"{space}/{cut}"] = {"acc": hungarian_accuracy(ds.y[idx], parts),
                                     "silhouette": placement.silhouette(emb, parts)}
        cut, _, score, note = placement.auto_cut(emb, k, seed)
        row[f"{space}/auto"] = {"cut": cut, "note": note}
        if space == "inputs" or len(idx) >= placement.LATENT_MAP_MIN_SAMPLES:
            candidates.append((score, f"{space}/{cut}"))
    row["auto"] = max(candidates)[1]
    cells = "  ".join(f"{key} ACC {row[key]['acc']:.3f} sil {row[key]['silhouette']:.3f}"
                      for key in row if "/" in key and "acc" in row[key])
    auto = f"  auto -> {row['auto']}" + (f" ACC {row[row['auto']]['acc']:.3f}" if row["auto"] in row else "")
    print(f"{name:10s} n {len(idx):5d} k {k:3d}  {cells}{auto}  (ae {seconds:.0f} s)", flush=True)
    for space in ("inputs", "latents"):
        print(f"{'':10s} {space} auto cut: {row[f'{space}/auto']['note']}", flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.latent_maps", description=__doc__.splitlines()[0])
    p.add_argument("--sets", default="jaffe,umist,palm,digits,isolet,segment,mnist_test")
    p.add_argument("--epochs", type=int, default=40, help="the ae's epochs (the warm-up of a run twice as long)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cuts", default="kmeans,ward", help="comma-separated cuts of each map: kmeans, ward")
    args = p.parse_args(argv)
    info = common.machine_info()
    print(common.header("latent maps", info), flush=True)
    from nebula.config import PLACEMENT_CUTS

    known = [c for c in PLACEMENT_CUTS if c != "auto"]
    cuts = args.cuts.split(",")
    if not cuts or any(c not in known for c in cuts):
        p.error(f"--cuts takes {' and/or '.join(known)}, found {args.cuts!r}")
    rows = [r for r in (compare(s, args.epochs, args.seed, cuts) for s in args.sets.split(",")) if r is not None]
    payload = {"command": "python -m benchmarks.latent_maps " + " ".join(argv if argv is not None else sys.argv[1:]),
               "epochs": args.epochs, "seed": args.seed, "cuts": cuts, "rows": rows}
    print(f"results: {common.write_result('latent_maps', payload, info)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
