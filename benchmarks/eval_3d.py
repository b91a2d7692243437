"""Acceptance figures of the 3D modalities for finished run folders (docs/3d.md).

For each run folder: the latent linear probe (logistic regression on latents standardised with the
train split's statistics, fit on split 0, scored on split 1, computed from the saved embeddings.npz),
a 10-NN cosine probe, and the geometry metrics of :mod:`nebula.evaluate.geometry` (Chamfer, F-score,
IoU, completion baselines) on the test split, with the data re-read as the run read it.

    python benchmarks/eval_3d.py RUN [RUN ...] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def probes(emb_path: Path) -> dict[str, float]:
    with np.load(emb_path) as f:
        z, y, split = f["z"], f["y"], f["split"]
    tr, te = split == 0, split == 1
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000)).fit(z[tr], y[tr])
    knn = KNeighborsClassifier(n_neighbors=10, metric="cosine", algorithm="brute").fit(z[tr], y[tr])
    return {"linear_probe": float(probe.score(z[te], y[te])), "knn10_cosine": float(knn.score(z[te], y[te])),
            "train": int(tr.sum()), "test": int(te.sum()), "latent_dim": int(z.shape[1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--out")
    args = parser.parse_args()
    from nebula.evaluate.geometry import geometry_metrics
    from nebula.run import load

    results = {}
    for folder in args.runs:
        t0 = time.perf_counter()
        run = load(folder)
        row = {"variant": run.info.get("variant"), "modality": run.info.get("modality"),
               "train_seconds": round(run.info.get("train_seconds", float("nan")), 1), **probes(Path(folder) / "embeddings.npz")}
        ds = run.load_data(run.config.data.source)
        row.update(geometry_metrics(run, ds))
        row["eval_seconds"] = round(time.perf_counter() - t0, 1)
        results[folder] = row
        print(json.dumps({folder: row}, indent=2), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
