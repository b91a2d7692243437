"""Clustering suite: nebula's variants against baselines on every labelled image and tabular dev set.

    python -m benchmarks clustering [--sets digits,usps] [--methods kmeans,tvae] [--seeds 0,1,2]
                                    [--epochs N] [--set section.key=value ...] [--tag NAME]

Sets (skipped, saying so, when ../shared/data lacks them): digits, optdigits, usps, mnist_test, jaffe,
umist, palm (images) and isolet, segment (tabular, through the .mat loader). Every method clusters all
N samples of a set into k = number of classes parts; the nebula variants train with their defaults and
``--anchors`` = k, like a new user would, on all N samples (``--fit all``, the protocol of the baselines and
of ClustPy's peers) or on the set's train split (``--fit train``).

Methods:

* ``kmeans``: k-means (n_init 10) on the raw input (pixels in [0, 1], standardised tabular features).
* ``tsne-kmeans``: PCA to 50 dimensions, 2-D t-SNE (perplexity 30), k-means on the map.
* ``tsne-nk-kmeans`` (an ablation, not a baseline): the same with nebula's placement perplexity
  n / 2k clipped to [5, 30] (:func:`nebula.latent.placement.tsne_perplexity`).
* ``ae``, ``vae``: nebula's (V)AE, k-means on the latents (``ae`` is the "AE + k-means" baseline).
* ``tae``, ``tvae``, ``nvc-ml``: the nearest anchor of each latent (Hungarian ACC of ``assign``).
* ``dec``, ``idec``, ``dcn``: ClustPy's deep clustering with its defaults, in the peers' environment
  (``$NEBULA_PEERS_PYTHON`` or ``.venv-peers/bin/python`` at the repository root); skipped with a message
  when it is absent.

Per method and set: ACC (Hungarian), NMI, ARI mean +- std (ddof 0) over seeds, and seconds per run.
Results go to benchmarks/results/clustering[-TAG].json and, unless ``--no-docs``, a table to
docs/clustering.md between ``<!-- clustering-suite:TAG -->`` markers (replaced on each run).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import common

SHARED = Path(os.environ.get("NEBULA_SHARED_DATA", common.ROOT.parent / "shared" / "data"))
#: name -> (source relative to ../shared/data or a registered name, loader options)
SETS: dict[str, tuple[str, dict[str, Any]]] = {
    "digits": ("digits", {}),
    "optdigits": ("optdigits", {}),
    "usps": ("usps/usps.h5", {}),
    "mnist_test": ("mnist_test", {}),
    "jaffe": ("mat/JAFFE.mat", {"shape": "32x32", "order": "C"}),
    "umist": ("mat/UMIST.mat", {"shape": "32x32", "order": "F"}),
    "palm": ("mat/Palm.mat", {}),
    "isolet": ("mat/Isolet.mat", {}),
    "segment": ("mat/segment_uni.mat", {}),
}
BASELINES = ("kmeans", "tsne-kmeans")
#: not a baseline of the issue: t-SNE + k-means with nebula's perplexity rule (n / 2k), to show how much of
#: the anchors' result the placement's map alone gives
ABLATIONS = ("tsne-nk-kmeans",)
LATENT_KMEANS = ("ae", "vae")
ANCHORED = ("tae", "tvae", "nvc-ml")
PEERS = ("dec", "idec", "dcn")
METHODS = (*BASELINES, *ABLATIONS, *LATENT_KMEANS, *ANCHORED, *PEERS)
DOCS = common.ROOT / "docs" / "clustering.md"


def load_set(name: str):
    """The set's NebulaDataset, or None when its files are absent."""
    from nebula.data import load

    source, options = SETS[name]
    if source not in ("digits",):
        path = SHARED / source
        if not path.exists():
            return None
        source = str(path)
    return load(source, options=options)


def flat_input(ds) -> np.ndarray:
    return ds.x.reshape(len(ds), -1).double().numpy()


def scores(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    from nebula.evaluate.metrics import hungarian_accuracy

    return {"acc": hungarian_accuracy(y, pred), "nmi": float(normalized_mutual_info_score(y, pred)),
            "ari": float(adjusted_rand_score(y, pred))}


def run_baseline(method: str, x: np.ndarray, k: int, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    if method in ("tsne-kmeans", "tsne-nk-kmeans"):
        from sklearn.decomposition import PCA
        from sklearn.manifold import TSNE

        from nebula.latent.placement import tsne_perplexity

        if x.shape[1] > 50:
            x = PCA(50, random_state=seed).fit_transform(x)
        perplexity = min(30.0, (len(x) - 1) / 3.0) if method == "tsne-kmeans" else tsne_perplexity(len(x), k)
        x = TSNE(2, init="pca", perplexity=perplexity, random_state=seed).fit_transform(x)
    return KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(x)


def fit_all(ds):
    """The set with every sample in the training split: the clustering protocol of the baselines and of
    ClustPy's peers, which fit all N samples they cluster."""
    import dataclasses

    return dataclasses.replace(ds, split=np.zeros(len(ds), dtype=np.int8))


def run_nebula(method: str, ds, k: int, seed: int, epochs: int | None,
               overrides: list[str]) -> tuple[np.ndarray, str | None]:
    """(N,) cluster of each sample (the nearest anchor, or k-means on z for the anchor-free variants) and the
    run's placement line (``anchors placed at epoch E: ...``; None without anchors)."""
    from nebula.config import Config
    from nebula.evaluate.metrics import kmeans_labels
    from nebula.run import train

    cfg = Config().apply_variant(method)
    cfg.model.num_anchors = k
    cfg.train.quiet, cfg.train.figures, cfg.train.seed = True, False, seed
    if epochs is not None:
        cfg.train.epochs = epochs
    cfg.override(overrides)
    run = train(cfg, dataset=ds)
    placed = [m for m in run.info.get("messages", []) if m.startswith("anchors placed")]
    if method in ANCHORED:
        return run.embeddings["assign"], (placed[-1] if placed else None)
    return kmeans_labels(run.embeddings["z"], k, seed=seed), None


def peers_python() -> Path | None:
    path = Path(os.environ.get("NEBULA_PEERS_PYTHON", common.ROOT / ".venv-peers" / "bin" / "python"))
    return path if path.exists() else None


def run_peers(methods: list[str], ds, k: int, seeds: list[int], python: Path,
              peer_epochs: tuple[int, int] | None) -> dict[str, list[tuple[np.ndarray, float]]]:
    """{method: [(labels, seconds) per seed]} from benchmarks/clustering_peers.py in the peers' environment."""
    out: dict[str, list[tuple[np.ndarray, float]]] = {m: [] for m in methods}
    with tempfile.TemporaryDirectory(prefix="nebula-peers-") as tmp:
        data = Path(tmp) / "data.npz"
        np.savez(data, x=flat_input(ds).astype(np.float32), y=ds.y)
        cmd = [str(python), str(common.ROOT / "benchmarks" / "clustering_peers.py"), str(data),
               "--methods", ",".join(methods), "--seeds", ",".join(map(str, seeds)), "--clusters", str(k)]
        if peer_epochs:
            cmd += ["--pretrain-epochs", str(peer_epochs[0]), "--clustering-epochs", str(peer_epochs[1])]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1][:300]
            print(f"   peers failed (exit {proc.returncode}): {tail}", flush=True)
        for line in proc.stdout.splitlines():
            if line.startswith("{"):
                rec = json.loads(line)
                out[rec["method"]].append((np.asarray(rec["labels"]), float(rec["seconds"])))
    return out


def summarise(runs: list[dict[str, float]]) -> dict[str, Any]:
    res: dict[str, Any] = {"runs": runs}
    for key in ("acc", "nmi", "ari", "seconds"):
        v = np.array([r[key] for r in runs], dtype=float)
        res[key] = {"mean": float(v.mean()), "std": float(v.std())}
    return res


def markdown(results: dict[str, dict[str, Any]], sets: list[str], methods: list[str], title: str) -> str:
    lines = [title, ""]
    for key, name in (("acc", "ACC"), ("nmi", "NMI"), ("ari", "ARI")):
        rows = []
        for m in methods:
            row = [m]
            for s in sets:
                r = results.get(s, {}).get(m)
                row.append(f"{r[key]['mean']:.3f} ± {r[key]['std']:.3f}" if r else "-")
            rows.append(row)
        lines += [f"**{name}** (mean ± std over seeds)", "", common.table(["method", *sets], rows), ""]
    rows = [[m, *(f"{results[s][m]['seconds']['mean']:.1f}" if m in results.get(s, {}) else "-" for s in sets)]
            for m in methods]
    lines += ["**seconds per run**", "", common.table(["method", *sets], rows), ""]
    return "\n".join(lines)


def write_docs(text: str, tag: str) -> None:
    start, end = f"<!-- clustering-suite:{tag} -->", f"<!-- /clustering-suite:{tag} -->"
    doc = DOCS.read_text() if DOCS.exists() else ""
    block = f"{start}\n{text}\n{end}"
    if start in doc and end in doc:
        head, rest = doc.split(start, 1)
        doc = head + block + rest.split(end, 1)[1]
    else:
        doc = doc.rstrip("\n") + "\n\n" + block + "\n"
    DOCS.write_text(doc)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks clustering", description=__doc__.splitlines()[0])
    p.add_argument("--sets", default=",".join(SETS), help="comma-separated, from " + ", ".join(SETS))
    p.add_argument("--methods", default=",".join(METHODS), help="comma-separated, from " + ", ".join(METHODS))
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=None, help="nebula's train.epochs (default: nebula's default)")
    p.add_argument("--peer-epochs", default=None, metavar="PRE,CLUST",
                   help="ClustPy pre-training and clustering epochs (default: ClustPy's 100,150)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override for nebula's runs")
    p.add_argument("--fit", choices=("all", "train"), default="all",
                   help="nebula trains on all samples (default, as the baselines and peers do) or on the train split")
    p.add_argument("--tag", default="", help="names the results file and the docs table (e.g. an ablation)")
    p.add_argument("--no-docs", action="store_true", help="do not write the table into docs/clustering.md")
    args = p.parse_args(argv)
    sets, methods = args.sets.split(","), args.methods.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    bad = [s for s in sets if s not in SETS] + [m for m in methods if m not in METHODS]
    if bad:
        p.error(f"unknown set(s)/method(s): {', '.join(bad)}")
    started = common.machine_info()
    print(common.header("clustering suite", started), flush=True)
    peer_methods = [m for m in methods if m in PEERS]
    python = peers_python() if peer_methods else None
    if peer_methods and python is None:
        print(f"ClustPy peers ({', '.join(peer_methods)}) skipped: no peers' environment at "
              f"{common.ROOT / '.venv-peers'} (create it with: python -m venv .venv-peers && .venv-peers/bin/pip "
              "install torch==2.14.1 torchvision==0.29.1 clustpy; or set NEBULA_PEERS_PYTHON)", flush=True)
        methods = [m for m in methods if m not in PEERS]
        peer_methods = []
    peer_epochs = tuple(int(v) for v in args.peer_epochs.split(",")) if args.peer_epochs else None
    results: dict[str, dict[str, Any]] = {}
    done_sets = []
    for name in sets:
        ds = load_set(name)
        if ds is None:
            print(f"{name}: skipped ({SHARED / SETS[name][0]} not found)", flush=True)
            continue
        done_sets.append(name)
        y, k = ds.y, ds.num_classes
        print(f"{name}: {len(ds)} samples, input {tuple(ds.input_shape)}, {ds.modality}, k = {k}", flush=True)
        results[name] = {}
        for method in methods:
            runs = []
            if method in PEERS:
                if method != peer_methods[0]:
                    continue
                got = run_peers(peer_methods, ds, k, seeds, python, peer_epochs)
                for m, rs in got.items():
                    if rs:
                        results[name][m] = summarise([{**scores(y, lab), "seconds": sec, "seed": s}
                                                      for (lab, sec), s in zip(rs, seeds)])
                        r = results[name][m]
                        print(f"  {m:12s} ACC {r['acc']['mean']:.3f} ± {r['acc']['std']:.3f}  NMI {r['nmi']['mean']:.3f}"
                              f"  ARI {r['ari']['mean']:.3f}  {r['seconds']['mean']:.1f} s/run", flush=True)
                continue
            for seed in seeds:
                t0 = time.perf_counter()
                placed = None
                if method in BASELINES or method in ABLATIONS:
                    pred = run_baseline(method, flat_input(ds), k, seed)
                else:
                    pred, placed = run_nebula(method, fit_all(ds) if args.fit == "all" else ds, k, seed,
                                              args.epochs, args.set)
                runs.append({**scores(y, pred), "seconds": time.perf_counter() - t0, "seed": seed}
                            | ({"placement": placed} if placed else {}))
            results[name][method] = r = summarise(runs)
            print(f"  {method:12s} ACC {r['acc']['mean']:.3f} ± {r['acc']['std']:.3f}  NMI {r['nmi']['mean']:.3f}"
                  f"  ARI {r['ari']['mean']:.3f}  {r['seconds']['mean']:.1f} s/run"
                  f"  (per seed {[round(x['acc'], 3) for x in runs]})", flush=True)
    shown = [m for m in METHODS if any(m in results[s] for s in done_sets)]
    command = "python -m benchmarks clustering " + " ".join(argv if argv is not None else sys.argv[1:])
    title = (f"Measured with `{command.strip()}` (git {os.environ.get('NEBULA_GIT_COMMIT') or started.get('git_commit', '?')}, seeds {args.seeds}"
             f"{', overrides ' + ' '.join(args.set) if args.set else ''}; nebula fit on "
             f"{'all samples' if args.fit == 'all' else 'the train split'}).")
    text = markdown(results, done_sets, shown, title)
    print(text, flush=True)
    name = "clustering" + (f"-{args.tag}" if args.tag else "")
    payload = {"command": command, "fit": args.fit, "sets": done_sets, "methods": shown, "seeds": seeds, "epochs": args.epochs,
               "overrides": args.set, "results": results}
    print(f"results: {common.write_result(name, payload, started)}", flush=True)
    if not args.no_docs:
        write_docs(text, args.tag or "main")
    return 0


if __name__ == "__main__":
    sys.exit(main())
