"""``nebula compare``: train variants side by side with one architecture and budget, evaluate, report.

For every variant x seed a run folder ``OUT/runs/<variant>-seed<s>`` is trained from one base
configuration (defaults < ``--config`` < ``--set``) that differs only by the variant's flags
(:meth:`~nebula.config.Config.apply_variant`) and the seed, then evaluated with
:func:`nebula.evaluate.evaluate`. Baselines are computed in the same run on the same data and seeds:
k-means on the raw input and k-means on a PCA of the input to the latent dimension d (each also
read out with the kNN and linear probes).

Outputs in ``OUT``: ``results.csv`` (a row per variant x seed and per baseline x seed, a column per
metric), ``results.md`` (mean +- std per variant, best in bold), ``summary.json`` and ``report.html``
(one self-contained page: tables, scatter grid variants x {label, anchor}, covariance matrices,
anchor manifolds, reconstructions, training curves, anchor usage).
"""

from __future__ import annotations

import copy
import csv
import html
import json
import math
import platform
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nebula.config import VARIANTS, Config
from nebula.errors import ConfigError
from nebula.evaluate import SUMMARY_COLUMNS, as_float, evaluate, load_embeddings, read_metrics_csv
from nebula.evaluate import metrics as M
from nebula.evaluate.plots import latent_scatter, renderer_for
from nebula.evaluate.probes import probe_scores
from nebula.evaluate.report import (
    anchor_usage_bars,
    centre_samples,
    cluster_centres,
    covariance_heatmaps,
    html_figure,
    html_page,
    html_table,
    training_curves,
)

#: results.md / report tables: (title, summary keys)
TABLES: list[tuple[str, list[str]]] = [
    ("Clustering (all labelled samples; Hungarian ACC, purity, NMI arithmetic, ARI, AMI)",
     ["anchor_acc", "anchor_purity", "anchor_nmi", "anchor_ari", "anchor_ami",
      "kmeans_acc", "kmeans_purity", "kmeans_nmi", "kmeans_ari", "kmeans_ami"]),
    ("Read-outs (train split -> test split) and latent geometry",
     ["knn10", "knn1", "linear_probe", "rec_test", "dead_anchors", "anchor_min_dist", "anchor_spread",
      "offdiag_energy", "train_seconds"]),
]
BASELINE_RAW = "baseline: raw input"
HEADERS = {key: header for key, header, _ in SUMMARY_COLUMNS}
DIRECTION = {key: direction for key, _, direction in SUMMARY_COLUMNS}


@dataclass
class CompareResult:
    """What :func:`compare` wrote and measured."""

    out_dir: Path
    rows: list[dict[str, Any]] = field(default_factory=list)
    report: Path | None = None
    results_csv: Path | None = None
    results_md: Path | None = None
    summary: dict[str, Any] = field(default_factory=dict)


def parse_list(text: str | Sequence[str], kind: type = str, name: str = "list") -> list:
    """``"a,b,c"`` -> [a, b, c] converted with ``kind``; raises :class:`ConfigError` on bad items."""
    items = [s.strip() for s in (text.split(",") if isinstance(text, str) else text) if str(s).strip()]
    try:
        out = [kind(s) for s in items]
    except ValueError:
        raise ConfigError(f"--{name}: expected comma-separated {kind.__name__} values, found {text!r}") from None
    if not out:
        raise ConfigError(f"--{name}: empty list")
    return out


def compare(data: str | None = None, variants: Sequence[str] = tuple(VARIANTS), seeds: Sequence[int] = (0, 1, 2),
            out: str | Path = "runs/compare", *, config: Config | str | Path | None = None,
            overrides: Sequence[str] = (), epochs: int | None = None, device: str | None = None,
            tsne: bool = False, overwrite: bool = False, quiet_training: bool = True, threads: int | None = None,
            jobs: int = 1, log: Callable[[str], None] = print, command: str | None = None) -> CompareResult:
    """Train ``variants`` x ``seeds`` on ``data`` with one architecture and budget; evaluate; report.

    Args:
        data: dataset name or path (None: the configuration's ``data.source``).
        variants: names from :data:`nebula.config.VARIANTS`.
        seeds: training seeds (the data split is the configuration's and is shared by all runs).
        out: output folder.
        config: base configuration (a :class:`Config` or a YAML path); ``overrides`` are ``key=value``.
        epochs, device: shortcuts for ``train.epochs`` / ``train.device``.
        tsne: add a t-SNE scatter grid (slower).
        overwrite: replace finished runs in ``out/runs``.
        quiet_training: hide the per-step progress bars (one line per run is always logged).
        threads: torch CPU threads for this comparison (None: torch's default); restored afterwards.
        jobs: runs trained at the same time in worker processes (each with ``threads`` or 1 thread);
            results do not depend on it.
        log: where progress lines go.
        command: the command line recorded in the report.
    """
    previous_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        return _compare(data, variants, seeds, out, config, overrides, epochs, device, tsne, overwrite,
                        quiet_training or jobs > 1, threads, jobs, log, command)
    finally:
        torch.set_num_threads(previous_threads)


def _compare(data, variants, seeds, out, config, overrides, epochs, device, tsne, overwrite, quiet_training, threads,
             jobs, log, command) -> CompareResult:
    t_start = time.perf_counter()
    load_start = _load_average()
    from nebula.run import load_dataset

    base = _base_config(config, data, overrides, epochs, device, quiet_training)
    variants = list(variants)
    for v in variants:
        if v not in VARIANTS:
            raise ConfigError(f"unknown variant '{v}'; choose from {', '.join(VARIANTS)}")
    if len(set(variants)) != len(variants) or len(set(seeds)) != len(seeds):
        raise ConfigError("--variants and --seeds must not repeat entries")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "figures").mkdir(exist_ok=True)
    base.validate()
    dataset = load_dataset(base)
    log(f"compare: {base.data.source} ({len(dataset)} samples, {dataset.modality}, "
        f"{int((dataset.split == 0).sum())} train / {int((dataset.split == 1).sum())} test), "
        f"variants {', '.join(variants)}, seeds {', '.join(map(str, seeds))}, {base.train.epochs} epochs -> {out}")

    tasks = []
    for v in variants:
        for s in seeds:
            cfg = copy.deepcopy(base)
            cfg.apply_variant(v)
            cfg.train.seed = int(s)
            cfg.output = str(out / "runs" / f"{v}-seed{s}")
            tasks.append((v, int(s), cfg))
    if not overwrite:  # fail before training anything rather than after the first runs
        from nebula.run import prepare_run_dir

        for _, _, cfg in tasks:
            if (Path(cfg.output) / "run.json").exists():
                prepare_run_dir(Path(cfg.output), overwrite=False, resume=False)
    results: dict[tuple[str, int], dict[str, Any]] = {}
    jobs = max(1, min(int(jobs or 1), len(tasks)))

    def report(v: str, s: int, res: dict[str, Any]) -> None:
        results[(v, s)] = res
        sm = res["summary"]
        log(f"[{len(results)}/{len(tasks)}] {v:7s} seed {s}: {res['train_seconds']:5.1f} s train+save, "
            f"{res['eval_seconds']:4.1f} s eval | anchor ACC {_fmt(sm['anchor_acc'])}  k-means ACC "
            f"{_fmt(sm['kmeans_acc'])}  NMI {_fmt(sm['kmeans_nmi'])}  kNN-10 {_fmt(sm['knn10'])}  "
            f"probe {_fmt(sm['linear_probe'])}  rec {_fmt(sm['rec_test'], 2)}")

    if jobs == 1:
        for v, s, cfg in tasks:
            report(v, s, train_and_evaluate(cfg, dataset, overwrite))
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=torch.set_num_threads, initargs=(threads or 1,)) as pool:
            futures = {pool.submit(train_and_evaluate, cfg, dataset, overwrite): (v, s) for v, s, cfg in tasks}
            for fut in as_completed(futures):
                report(*futures[fut], fut.result())
    rows: list[dict[str, Any]] = []
    for v, s, cfg in tasks:
        res = results[(v, s)]
        rows.append({"variant": v, "kind": "model", "seed": s, "parameters": res["parameters"],
                     "epochs": cfg.train.epochs, **res["summary"]})

    t_base = time.perf_counter()
    rows += baseline_rows(dataset, seeds, base.model.latent_dim)
    log(f"baselines (k-means, kNN and linear probe on the raw input and its PCA-{base.model.latent_dim}): "
        f"{time.perf_counter() - t_base:.1f} s")

    result = CompareResult(out_dir=out, rows=rows)
    result.results_csv = write_results_csv(out / "results.csv", rows)
    summary = acceptance_summary(rows)
    result.summary = summary
    t_fig = time.perf_counter()
    figures = compare_figures(out, variants, seeds, dataset, tsne=tsne)
    log(f"figures: {time.perf_counter() - t_fig:.1f} s")
    elapsed = time.perf_counter() - t_start
    context = {
        "command": command or "nebula.evaluate.compare.compare(...)",
        "dataset": f"{base.data.source}: {len(dataset)} samples, {dataset.num_classes} classes, "
                   f"split {dataset.meta.get('split_kind', '')}",
        "machine": machine_description() + f"; load average {load_start} at start, {_load_average()} at end",
        "seconds": elapsed,
        "config": base.to_dict(),
        "variants": variants,
        "seeds": list(seeds),
    }
    result.results_md = write_results_md(out / "results.md", rows, context, summary)
    summary_json = {**context, "acceptance": summary, "figures": [str(p.relative_to(out)) for paths in figures.values() for p in paths]}
    (out / "summary.json").write_text(json.dumps(_clean(summary_json), indent=1))
    result.report = write_report(out / "report.html", rows, context, summary, figures)
    log(f"compare finished in {elapsed:.0f} s; report: {result.report}")
    return result


def train_and_evaluate(cfg: Config, dataset: Any, overwrite: bool) -> dict[str, Any]:
    """Train one configuration on ``dataset`` into ``cfg.output`` and evaluate it (a worker's job).

    Returns the flat evaluation summary, the parameter count and the seconds spent training (with
    saving) and evaluating.
    """
    from nebula.run import train

    t0 = time.perf_counter()
    run = train(cfg, dataset=dataset, overwrite=overwrite, figures=False)
    t1 = time.perf_counter()
    result = evaluate(run.run_dir, run=run, dataset=dataset)
    return {"summary": {k: as_float(v) for k, v in result["summary"].items()}, "parameters": run.info.get("parameters"),
            "train_seconds": t1 - t0, "eval_seconds": time.perf_counter() - t1}


def _base_config(config: Config | str | Path | None, data: str | None, overrides: Sequence[str],
                 epochs: int | None, device: str | None, quiet: bool) -> Config:
    if isinstance(config, Config):
        base = copy.deepcopy(config)
    elif config:
        base = Config.from_yaml(config)
    else:
        base = Config()
    if data:
        base.data.source = str(data)
    from nebula.cli import set_options

    set_options(base, list(overrides))
    if epochs is not None:
        base.train.epochs = int(epochs)
    if device:
        base.train.device = device
    base.train.quiet = quiet
    base.train.figures = False
    # only the final weights are needed here: a checkpoint per epoch is pure I/O cost
    base.train.checkpoint_every = max(base.train.checkpoint_every, base.train.epochs)
    base.output = None
    return base


# --------------------------------------------------------------------------- baselines
def baseline_rows(dataset: Any, seeds: Sequence[int], pca_dim: int, n_init: int = 10) -> list[dict[str, Any]]:
    """Baselines on the input itself, a row per seed: k-means (k = classes, ``n_init`` restarts, seeded)
    on the flattened raw input and on its PCA to ``pca_dim`` components (fit on all samples), scored
    like the runs; kNN and linear probes (split 0 -> split 1) on the same features (deterministic, so
    computed once and repeated per seed). Empty when the data has no labels or is not numeric."""
    if dataset.y is None or not torch.is_floating_point(dataset.x):
        return []
    from sklearn.decomposition import PCA

    x = dataset.x.reshape(len(dataset), -1).double().numpy()
    y = np.asarray(dataset.y)
    labelled = y >= 0
    k = len(np.unique(y[labelled]))
    if k < 2:
        return []
    dim = int(min(pca_dim, x.shape[1], len(x)))
    feats = {BASELINE_RAW: x, f"baseline: PCA-{dim} of input": PCA(n_components=dim, svd_solver="full").fit_transform(x)}
    rows = []
    for name, f in feats.items():
        probes = probe_scores(f, y, dataset.split)
        for s in seeds:
            scores = M.clustering_scores(y[labelled], M.kmeans_labels(f[labelled], k, seed=int(s), n_init=n_init))
            row = {"variant": name, "kind": "baseline", "seed": int(s)}
            row.update({f"kmeans_{key}": scores[full] for key, full in
                        (("acc", "accuracy"), ("purity", "purity"), ("nmi", "nmi"), ("ari", "ari"), ("ami", "ami"))})
            row.update({key: probes[key] for key in ("knn10", "knn1", "linear_probe")})
            rows.append(row)
    return rows


# --------------------------------------------------------------------------- tables
def _fmt(v: Any, digits: int = 3) -> str:
    v = as_float(v)
    return "-" if not math.isfinite(v) else f"{v:.{digits}f}"


def _metric_keys(rows: list[dict[str, Any]]) -> list[str]:
    keys = [k for k, _, _ in SUMMARY_COLUMNS]
    for r in rows:
        keys += [k for k in r if "." in k and k not in keys]  # plug-in metrics
    return keys


def write_results_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    """A row per variant x seed (and baseline x seed), a column per metric; blanks for n/a."""
    keys = ["variant", "kind", "seed", "parameters", "epochs"] + _metric_keys(rows)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(keys)
        for r in rows:
            w.writerow(["" if (isinstance(r.get(k), float) and not math.isfinite(r[k])) or r.get(k) is None
                        else (f"{r[k]:.6g}" if isinstance(r[k], float) else r[k]) for k in keys])
    return path


def read_results_csv(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a ``results.csv`` (metrics as floats, NaN for blanks)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    out = []
    for r in rows:
        row: dict[str, Any] = {"variant": r["variant"], "kind": r["kind"], "seed": int(r["seed"])}
        for k, v in r.items():
            if k not in row:
                row[k] = as_float(v) if v != "" else float("nan")
        out.append(row)
    return out


def aggregate(rows: list[dict[str, Any]]) -> list[tuple[str, str, dict[str, tuple[float, float, int]]]]:
    """(name, kind, {metric: (mean, std, count)}) per variant/baseline in first-seen order; std is the
    sample standard deviation over seeds (ddof = 1; 0 for one seed), NaN entries ignored."""
    names: list[tuple[str, str]] = []
    for r in rows:
        if (r["variant"], r["kind"]) not in names:
            names.append((r["variant"], r["kind"]))
    keys = _metric_keys(rows)
    out = []
    for name, kind in names:
        stats = {}
        for k in keys:
            vals = np.array([as_float(r.get(k)) for r in rows if r["variant"] == name and r["kind"] == kind])
            vals = vals[np.isfinite(vals)]
            if len(vals):
                stats[k] = (float(vals.mean()), float(vals.std(ddof=1)) if len(vals) > 1 else 0.0, len(vals))
        out.append((name, kind, stats))
    return out


def _best(agg, key: str) -> float | None:
    direction = DIRECTION.get(key, 1 if "." in key else 0)
    vals = [st[key][0] for _, _, st in agg if key in st]
    if not direction or len(vals) < 2:
        return None
    return max(vals) if direction > 0 else min(vals)


def table_cells(rows: list[dict[str, Any]], keys: list[str], bold: Callable[[str], str]) -> tuple[list[str], list[list[str]], list[str]]:
    """Header, cell rows (``mean +- std``; the best mean of a column wrapped with ``bold``) and kinds."""
    agg = aggregate(rows)
    keys = [k for k in keys if any(k in st for _, _, st in agg)]
    header = ["variant"] + [HEADERS.get(k, k) for k in keys]
    cells, kinds = [], []
    for name, kind, stats in agg:
        line = [name]
        for k in keys:
            if k not in stats:
                line.append("-")
                continue
            mean, std, _ = stats[k]
            digits = 1 if k in ("train_seconds",) else (2 if k in ("rec_test", "dead_anchors") else 3)
            text = f"{mean:.{digits}f} ± {std:.{digits}f}"
            best = _best(agg, k)
            # ties at the shown precision are all bold
            line.append(bold(text) if best is not None and f"{mean:.{digits}f}" == f"{best:.{digits}f}" else text)
        cells.append(line)
        kinds.append(kind)
    return header, cells, kinds


def acceptance_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's acceptance comparison, measured: the best nearest-anchor Hungarian accuracy (mean
    over seeds) among tvae / nvc-ml against ae + k-means, vae + k-means and k-means on raw input."""
    agg = {name: st for name, _, st in aggregate(rows)}

    def mean(name: str, key: str) -> float | None:
        st = agg.get(name, {})
        return st[key][0] if key in st else None

    anchor = {v: mean(v, "anchor_acc") for v in ("tvae", "nvc-ml") if mean(v, "anchor_acc") is not None}
    refs = {"ae + k-means": mean("ae", "kmeans_acc"), "vae + k-means": mean("vae", "kmeans_acc"),
            "raw input + k-means": mean(BASELINE_RAW, "kmeans_acc")}
    refs = {k: v for k, v in refs.items() if v is not None}
    out: dict[str, Any] = {"anchor_acc": anchor, "references": refs}
    if anchor and refs:
        best = max(anchor, key=anchor.get)
        out["best"] = best
        out["passes"] = bool(all(anchor[best] > r for r in refs.values()))
    return out


def machine_description() -> str:
    import os

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    dev = f"CUDA {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "CPU"
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu}), torch {torch.__version__} "
            f"{dev}, {torch.get_num_threads()} torch thread(s); Python {platform.python_version()}")


def _load_average() -> str:
    import os

    try:
        return f"{os.getloadavg()[0]:.1f}"
    except (OSError, AttributeError):
        return "n/a"


def _acceptance_text(summary: dict[str, Any]) -> str:
    if "passes" not in summary:
        return "acceptance comparison not available (needs tvae or nvc-ml, and ae/vae or the raw baseline)"
    best = summary["best"]
    refs = ", ".join(f"{k} {v:.3f}" for k, v in summary["references"].items())
    word = "above" if summary["passes"] else "NOT above all of"
    return (f"best nearest-anchor Hungarian accuracy (mean over seeds): {best} {summary['anchor_acc'][best]:.3f}, "
            f"{word} {refs}.")


def write_results_md(path: Path, rows: list[dict[str, Any]], context: dict[str, Any], summary: dict[str, Any]) -> Path:
    """Markdown tables of mean ± std over seeds per variant and baseline, best mean in bold."""
    lines = [f"# nebula compare: {context['dataset']}", "",
             f"Command: `{context['command']}`  ",
             f"Machine: {context['machine']}  ",
             f"Total time: {context['seconds']:.0f} s; seeds {', '.join(map(str, context['seeds']))}; "
             f"{context['config']['train']['epochs']} epochs per run; mean ± std over seeds (std with ddof = 1); "
             "best mean of a column in bold.", "",
             f"Acceptance check: {_acceptance_text(summary)}", ""]
    for title, keys in TABLES + [("Plug-in metrics", [k for k in _metric_keys(rows) if "." in k])]:
        header, cells, _ = table_cells(rows, keys, lambda t: f"**{t}**")
        if len(header) < 2:
            continue
        lines += [f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(c) + " |" for c in cells]
        lines.append("")
    lines.append("ACC = Hungarian (one-to-one) clustering accuracy; purity = majority-class accuracy; "
                 "anchor = nearest-anchor assignment; k-means = k-means (k = classes, n_init = 10) on the latents "
                 "or on the baseline's features; kNN uses cosine distance; the linear probe is logistic regression "
                 "on standardised features; rec = the model's per-sample reconstruction loss on the test split.")
    path.write_text("\n".join(lines) + "\n")
    return path


# --------------------------------------------------------------------------- figures
def compare_figures(out: Path, variants: Sequence[str], seeds: Sequence[int], dataset: Any, tsne: bool = False
                    ) -> dict[str, list[Path]]:
    """Draw the report's figures from the saved run folders under ``out/figures`` (seed = the first
    seed for per-run figures; data-space grids decode with the saved weights); returns {section: [paths]}."""
    from nebula.run import load

    fig_dir = out / "figures"
    first_runs = {v: load(out / "runs" / f"{v}-seed{seeds[0]}") for v in variants}
    seed0 = seeds[0]
    figs: dict[str, list[Path]] = {"scatter_pca": [], "scatter_tsne": [], "covariance": [], "manifolds": [],
                                   "reconstructions": [], "curves": [], "usage": []}
    covs, usages, histories = {}, {}, {}
    k = max(dataset.num_classes, 2)
    render = renderer_for(dataset.modality)
    for v in variants:
        run_dir = out / "runs" / f"{v}-seed{seed0}"
        emb = load_embeddings(run_dir)
        z, y = emb["z"], emb["y"]
        anchors, assign = emb.get("anchors", np.zeros((0, z.shape[1]))), emb.get("assign", np.full(len(z), -1))
        centres, ids, kind = cluster_centres(z, assign, anchors, k, seed0)
        shown = centres if kind == "anchor" else None
        for method in ["pca"] + (["tsne"] if tsne else []):
            for colour, values, what in (("label", np.maximum(y, 0), "true label"), ("anchor", ids, f"nearest {kind}")):
                if colour == "label" and not (y >= 0).any():
                    continue
                p = fig_dir / f"scatter_{method}_{v}_{colour}.png"
                latent_scatter(z, values, p, f"{v}: {method.upper()} by {what}", shown, method, seed0)
                figs[f"scatter_{method}"].append(p)
        covs[v] = M.latent_covariance(z)
        if kind == "anchor":
            usages[v] = np.bincount(assign, minlength=len(anchors))
        histories[v] = [read_metrics_csv(out / "runs" / f"{v}-seed{s}" / "metrics.csv") for s in seeds]
        run = first_runs.get(v)
        if render is not None and run is not None and hasattr(run.model, "decode"):
            grid = centre_samples(run.model, z, ids, centres, cols=8, seed=seed0)
            p = fig_dir / f"manifold_{v}.png"
            render(grid, p, f"{v}: a row per {kind} centre")
            figs["manifolds"].append(p)
    figs["covariance"].append(covariance_heatmaps(covs, fig_dir / "covariance.png",
                                                  f"latent covariance (d x d), seed {seed0}"))
    figs["curves"].append(training_curves(histories, fig_dir / "training_curves.png",
                                          f"training curves: mean over seeds {', '.join(map(str, seeds))}, band = min-max"))
    if usages:
        figs["usage"].append(anchor_usage_bars(usages, fig_dir / "anchor_usage.png", f"latents per anchor, seed {seed0}"))
    if render is not None and first_runs:
        p = _reconstruction_grid(first_runs, variants, dataset, fig_dir / "reconstructions.png", seed0, render)
        if p is not None:
            figs["reconstructions"].append(p)
    return figs


def _reconstruction_grid(runs: dict[str, Any], variants: Sequence[str], dataset: Any, path: Path, seed: int,
                         render: Callable) -> Path | None:
    """Rows: test inputs (and targets), then each variant's reconstruction decode(mu)."""
    from nebula.evaluate.plots import _decode

    rng = np.random.default_rng(seed)
    test = np.flatnonzero(dataset.split == 1)
    pool = test if len(test) >= 1 else np.arange(len(dataset))
    pick = np.sort(rng.choice(pool, size=min(12, len(pool)), replace=False))
    rows = [dataset.x[pick].numpy()]
    if dataset.target is not None:
        rows.append(dataset.target[pick].numpy())
    names = []
    for v in variants:
        run = runs.get(v)
        if run is None or not hasattr(run.model, "decode"):
            continue
        z = run.embeddings["z"][pick]
        rec = _decode(run.model, z)
        if rec.shape[1:] != rows[-1].shape[1:]:
            return None
        rows.append(rec)
        names.append(v)
    if not names:
        return None
    render(np.stack(rows), path, "rows: input" + (", target" if dataset.target is not None else "") + ", " + ", ".join(names))
    return path


# --------------------------------------------------------------------------- HTML
def write_report(path: Path, rows: list[dict[str, Any]], context: dict[str, Any], summary: dict[str, Any],
                 figures: dict[str, list[Path]]) -> Path:
    """One offline HTML page: context, tables (mean ± std, best bold), acceptance line and figures."""
    body = [
        f'<p class="note"><b>Command:</b> <code>{html.escape(context["command"])}</code><br>'
        f'<b>Data:</b> {html.escape(context["dataset"])}<br>'
        f'<b>Machine:</b> {html.escape(context["machine"])}<br>'
        f'<b>Total time:</b> {context["seconds"]:.0f} s for {len(context["variants"])} variants x '
        f'{len(context["seeds"])} seeds, {context["config"]["train"]["epochs"]} epochs each, identical '
        f'architecture and budget (only the variant flags differ).</p>',
        f'<p><b>Acceptance check:</b> {html.escape(_acceptance_text(summary))}</p>',
    ]
    for title, keys in TABLES + [("Plug-in metrics", [k for k in _metric_keys(rows) if "." in k])]:
        header, cells, kinds = table_cells(rows, keys, lambda t: f"<b>{html.escape(t)}</b>")
        if len(header) < 2:
            continue
        cells = [[c if c.startswith("<b>") else html.escape(c) for c in line] for line in cells]
        body.append(f"<h2>{html.escape(title)}</h2>")
        body.append(html_table(header, cells, ["baseline" if k == "baseline" else "" for k in kinds], escape=False))
    body.append('<p class="note">mean ± std over seeds (ddof = 1), best mean per column in bold; baselines in italics. '
                "ACC = Hungarian clustering accuracy, purity = majority-class accuracy, NMI/AMI with arithmetic "
                "averaging. Per-run numbers: results.csv; every run folder holds eval.json.</p>")
    sections = [("scatter_pca", "Latent scatter, centred PCA (rows: variants; left: true label, right: nearest anchor; "
                                "ae/vae: k-means clusters)"),
                ("scatter_tsne", "Latent scatter, t-SNE"),
                ("covariance", "Latent covariance matrices"),
                ("manifolds", "Anchor manifolds: decoder around each anchor (ae/vae: around k-means centres)"),
                ("reconstructions", "Reconstructions of test samples"),
                ("curves", "Training curves of every loss term"),
                ("usage", "Anchor usage")]
    for key, title in sections:
        paths = figures.get(key) or []
        if not paths:
            continue
        body.append(f"<h2>{html.escape(title)}</h2>")
        if key.startswith("scatter"):
            grid = []
            for v in context["variants"]:
                cells = [p for p in paths if p.stem.endswith(f"_{v}_label") or p.stem.endswith(f"_{v}_anchor")]
                grid.append("<tr>" + "".join(f"<td>{html_figure(p, width=380)}</td>" for p in cells) + "</tr>")
            body.append('<table class="grid">' + "".join(grid) + "</table>")
        else:
            body += [html_figure(p, width=None if key in ("covariance", "curves", "usage") else 420) for p in paths]
    path.write_text(html_page(f"nebula compare: {context['dataset']}", "\n".join(body)))
    return path


def _clean(obj: Any) -> Any:
    from nebula.evaluate import _json_clean

    return _json_clean(obj)


def command_line() -> str:
    """The current process's command line, shell-quoted (recorded in reports)."""
    args = [Path(sys.argv[0]).name] + sys.argv[1:]
    return " ".join(shlex.quote(a) for a in args)


__all__ = ["compare", "CompareResult", "baseline_rows", "aggregate", "acceptance_summary", "read_results_csv",
           "write_results_csv", "write_results_md", "write_report", "parse_list", "command_line"]
