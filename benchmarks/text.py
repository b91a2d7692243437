"""Text latents against bag-of-words baselines (issue 15), on the dev sets in ../shared/data.

For each data set (TREC coarse, official split; SMS Spam, SearchSnippets, StackOverflow: the loaders'
seeded stratified 80/20 split), in one run:

* models: ``nebula.evaluate.compare`` with the text DEFAULTS (no config file; only the number of
  anchors set to the number of classes, the k every clustering baseline gets) for the variants
  (tvae, nvc-ml) x seeds; and today's sequence VAE (``configs/text-trec.yaml`` / ``text-sms.yaml``
  recipes, tvae; L = 32 on the STC2 sets) for ``--seq-seeds``;
* baselines on the raw texts: tf-idf (scikit-learn, min_df 2, sublinear tf) + LSA-100 (truncated SVD
  of all texts, no labels): linear probe (train -> test split, the models' probe) and k-means on the
  L2-normalised LSA vectors; LSA-100 + t-SNE (2-d) + k-means; NMF topics (k = classes, argmax topic).

Clustering scores (Hungarian ACC, NMI) are on all labelled texts; seeds seed the SVD, t-SNE, k-means
and NMF. Figures are means (and standard deviations) over the seeds. Acceptance per data set: the
tvae and nvc-ml probes >= the tf-idf + LSA-100 probe and their nearest-anchor ACC >= the best
label-free baseline ACC. Writes benchmarks/results/text.json and prints the table.

    OMP_NUM_THREADS=1 python -m benchmarks text --jobs 2        # both cores: two data sets at a time
    OMP_NUM_THREADS=1 python -m benchmarks text --datasets trec --seeds 0 --seq-seeds none   # quick
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import common

DATA = common.ROOT.parent / "shared" / "data"
DATASETS = {
    "trec": (DATA / "trec", "text-trec.yaml", []),
    "sms": (DATA / "sms_spam" / "SMSSpamCollection", "text-sms.yaml", []),
    "searchsnippets": (DATA / "stc2" / "SearchSnippets.txt", "text-trec.yaml", ["data.options.max_length=32"]),
    "stackoverflow": (DATA / "stc2" / "StackOverflow.txt", "text-trec.yaml", ["data.options.max_length=32"]),
}
VARIANTS = ("tvae", "nvc-ml")
SEQ = "sequence VAE (tvae, recipe)"


def raw_texts(path: Path) -> list[str]:
    """The texts of a dev set in the order of its loader (so labels and split line up)."""
    from nebula.data.stc2 import read_stc2, stc2_pair
    from nebula.data.text import read_text, read_trec

    if path.is_dir():  # TREC folder
        return [t for f in ("TREC.train", "TREC.test") for t in read_trec(path / f)[0]]
    pair = stc2_pair(path)
    if pair is not None:
        return read_stc2(*pair)[0]
    return [ln.partition("\t")[2].strip() for ln in read_text(path, "utf-8").split("\n") if ln.strip()]


def baselines(texts: list[str], y: np.ndarray, split: np.ndarray, seeds: list[int], tsne: bool) -> dict[str, list[dict[str, float]]]:
    """Per baseline, one row of scores per seed (see the module docstring)."""
    from sklearn.decomposition import NMF, TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.manifold import TSNE
    from sklearn.preprocessing import normalize

    from nebula.evaluate import metrics as M
    from nebula.evaluate.probes import probe_scores

    k = len(np.unique(y))
    tfidf = TfidfVectorizer(min_df=2, sublinear_tf=True).fit_transform(texts)
    out: dict[str, list[dict[str, float]]] = {"tf-idf + LSA-100": [], "LSA-100 + t-SNE + k-means": [], "NMF topics": []}
    for s in seeds:
        t0 = time.perf_counter()
        lsa = TruncatedSVD(min(100, tfidf.shape[1] - 1), random_state=s).fit_transform(tfidf)
        unit = normalize(lsa)
        scores = M.clustering_scores(y, M.kmeans_labels(unit, k, seed=s, n_init=10))
        out["tf-idf + LSA-100"].append({"linear_probe": probe_scores(lsa, y, split, seed=s)["linear_probe"],
                                        "kmeans_acc": scores["accuracy"], "kmeans_nmi": scores["nmi"],
                                        "seconds": time.perf_counter() - t0})
        if tsne:
            t0 = time.perf_counter()
            emb = TSNE(2, init="pca", random_state=s).fit_transform(unit)
            scores = M.clustering_scores(y, M.kmeans_labels(emb, k, seed=s, n_init=10))
            out["LSA-100 + t-SNE + k-means"].append({"kmeans_acc": scores["accuracy"], "kmeans_nmi": scores["nmi"],
                                                     "seconds": time.perf_counter() - t0})
        t0 = time.perf_counter()
        topics = NMF(k, init="nndsvda", random_state=s, max_iter=400).fit_transform(tfidf).argmax(1)
        scores = M.clustering_scores(y, topics)
        out["NMF topics"].append({"kmeans_acc": scores["accuracy"], "kmeans_nmi": scores["nmi"],
                                  "seconds": time.perf_counter() - t0})
    return {name: rows for name, rows in out.items() if rows}


def model_rows(name: str, path: Path, k: int, variants: list[str], seeds: list[int], out: Path,
               config: Path | None = None, extra: list[str] | None = None, epochs: int | None = None) -> dict[str, list[dict[str, float]]]:
    """compare() runs: per variant, one row per seed with probe, anchor / k-means ACC and NMI, seconds."""
    from nebula.experiments.grid import compare

    overrides = [f"model.num_anchors={k}", *(extra or [])]
    result = compare(str(path), variants, seeds, out, config=str(config) if config else None, overrides=overrides,
                     epochs=epochs, threads=1, overwrite=True, log=lambda s: print(f"  [{name}] {s}", flush=True))
    rows: dict[str, list[dict[str, float]]] = {}
    keys = ("linear_probe", "knn10", "anchor_acc", "anchor_nmi", "kmeans_acc", "kmeans_nmi", "train_seconds")
    for r in result.rows:
        if r.get("kind") == "model":
            rows.setdefault(r["variant"], []).append({key: float(r[key]) for key in keys if key in r})
    return rows


def mean(rows: list[dict[str, float]], key: str) -> float:
    values = [r[key] for r in rows if key in r and np.isfinite(r[key])]
    return float(np.mean(values)) if values else float("nan")


def std(rows: list[dict[str, float]], key: str) -> float:
    values = [r[key] for r in rows if key in r and np.isfinite(r[key])]
    return float(np.std(values)) if len(values) > 1 else 0.0


def acceptance(methods: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    """Issue 15's criterion 1 on one data set (means over seeds)."""
    probe_ref = mean(methods.get("tf-idf + LSA-100", []), "linear_probe")
    free = {n: mean(r, "kmeans_acc") for n, r in methods.items() if n in ("tf-idf + LSA-100", "LSA-100 + t-SNE + k-means", "NMF topics")}
    best_free = max(free.values()) if free else float("nan")
    out: dict[str, Any] = {"lsa_probe": probe_ref, "best_label_free_acc": best_free}
    for v in VARIANTS:
        if v in methods:
            p, a = mean(methods[v], "linear_probe"), mean(methods[v], "anchor_acc")
            out[v] = {"probe": p, "anchor_acc": a, "probe_ok": bool(p >= probe_ref), "acc_ok": bool(a >= best_free)}
    return out


def fmt(rows: list[dict[str, float]], key: str) -> str:
    m = mean(rows, key)
    if not np.isfinite(m):
        return "-"
    if key == "train_seconds":
        return f"{m:.0f}"
    return f"{m:.3f} ± {std(rows, key):.3f}" if len(rows) > 1 else f"{m:.3f}"


def parse_seeds(text: str) -> list[int]:
    return [] if text in ("", "none") else [int(s) for s in re.split(r"[, ]+", text.strip()) if s]


def data_bytes(path: Path) -> int:
    """Size on disk of a data set (a file, or a folder's files): the cost order of ``--jobs``."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size


def run_dataset(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """Baselines, default-model runs and sequence-VAE runs of one data set (one process, 1 thread)."""
    from nebula.data import load

    path, recipe, seq_extra = DATASETS[name]
    ds = load(str(path))
    y, split, k = np.asarray(ds.y), np.asarray(ds.split), ds.num_classes
    print(f"-- {name}: {len(ds)} texts, {k} classes, {int((split == 0).sum())} train / {int((split == 1).sum())} test, "
          f"vocabulary {ds.meta['vocab_size']}, L {ds.x.shape[1]}", flush=True)
    t0 = time.perf_counter()
    methods = baselines(raw_texts(path), y, split, options["seeds"], tsne=options["tsne"])
    print(f"  [{name}] baselines: {time.perf_counter() - t0:.0f} s", flush=True)
    if options["variants"] and options["seeds"]:
        methods.update(model_rows(name, path, k, options["variants"], options["seeds"], Path(options["out"]) / name,
                                  epochs=options["epochs"]))
    if options["seq_seeds"]:
        seq = model_rows(name, path, k, ["tvae"], options["seq_seeds"], Path(options["out"]) / f"{name}-seq",
                         config=common.ROOT / "configs" / recipe, extra=seq_extra)
        methods[SEQ] = seq["tvae"]
    print(table(name, methods), flush=True)
    return {"texts": len(ds), "classes": k, "methods": methods, "acceptance": acceptance(methods)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.text", description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default=",".join(DATASETS), help="comma list of " + ", ".join(DATASETS))
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--seeds", default="0,1,2", help="seeds of the default-model runs and of the baselines")
    p.add_argument("--seq-seeds", default="0", help="seeds of the sequence-VAE recipe runs ('none': skip)")
    p.add_argument("--epochs", type=int, help="override train.epochs of the default-model runs (quick checks)")
    p.add_argument("--no-tsne", action="store_true", help="skip the LSA-100 + t-SNE + k-means baseline")
    p.add_argument("--jobs", type=int, default=1, help="data sets run at once (worker processes, torch 1 thread each)")
    p.add_argument("--out", default=str(common.ROOT / "runs" / "bench-text"), help="run folders")
    p.add_argument("--name", default="text", help="results file benchmarks/results/NAME.json")
    args = p.parse_args(argv)
    names = [n for n in args.datasets.split(",") if n]
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        p.error(f"unknown data set(s) {unknown}; choose from {', '.join(DATASETS)}")
    seeds, seq_seeds = parse_seeds(args.seeds), parse_seeds(args.seq_seeds)
    variants = [v for v in args.variants.split(",") if v]
    started = common.machine_info()
    print(common.header("text latents vs bag-of-words", started), flush=True)
    options = {"seeds": seeds, "seq_seeds": seq_seeds, "variants": variants, "epochs": args.epochs,
               "tsne": not args.no_tsne, "out": args.out}
    present = [n for n in names if DATASETS[n][0].exists()]
    for name in sorted(set(names) - set(present), key=names.index):
        print(f"-- {name}: {DATASETS[name][0]} not found, skipped", flush=True)
    results: dict[str, Any]
    if args.jobs > 1 and len(present) > 1:  # largest data first, so the two halves end close together
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        order = sorted(present, key=lambda n: -data_bytes(DATASETS[n][0]))
        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            done = dict(zip(order, pool.map(run_dataset, order, [options] * len(order))))
        results = {n: done[n] for n in present}
    else:
        results = {n: run_dataset(n, options) for n in present}
    for name, result in results.items():
        print(table(name, result["methods"]), flush=True)
        print(f"  acceptance: {result['acceptance']}", flush=True)
    path = common.write_result(args.name, {"datasets": results, "seeds": seeds, "seq_seeds": seq_seeds,
                                           "epochs_override": args.epochs}, started)
    print(f"-> {path}")
    return 0


def table(name: str, methods: dict[str, list[dict[str, float]]]) -> str:
    keys = ("linear_probe", "anchor_acc", "anchor_nmi", "kmeans_acc", "kmeans_nmi", "train_seconds")
    rows = [[f"{name}: {m}", *(fmt(r, k) for k in keys)] for m, r in methods.items()]
    return common.table(["method", "probe", "anchor ACC", "anchor NMI", "k-means ACC", "k-means NMI", "train s"], rows)


if __name__ == "__main__":
    raise SystemExit(main())
