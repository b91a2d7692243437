"""``nebula compare``: train variants side by side with one architecture and budget, evaluate, report.

For every variant x seed a run folder ``OUT/runs/<variant>-seed<s>`` is trained from one base
configuration (defaults < ``--config`` < ``--set``) that differs only by the variant's flags
(:meth:`~nebula.config.Config.apply_variant`) and the seed, then evaluated with
:func:`nebula.evaluate.evaluate`. Baselines are computed in the same run on the same data and seeds:
k-means on the raw input and k-means on a PCA of the input to the latent dimension d (each also
read out with the kNN and linear probes).

Outputs in ``OUT`` (tables: :mod:`nebula.experiments.tables`; figures and page:
:mod:`nebula.experiments.page`): ``results.csv`` (a row per variant x seed and per baseline x seed, a column per
metric), ``results.md`` (mean +- std per variant, best in bold), ``summary.json`` and ``report.html``
(one self-contained page: tables, scatter grid variants x {label, anchor}, covariance matrices,
anchor manifolds, reconstructions, training curves, anchor usage).
"""

from __future__ import annotations

import copy
import json
import platform
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nebula.config import VARIANTS, Config
from nebula.errors import ConfigError
from nebula.evaluate import as_float, evaluate
from nebula.evaluate import metrics as M
from nebula.evaluate.probes import probe_scores
from nebula.experiments.page import compare_figures, write_report
from nebula.experiments.tables import (
    BASELINE_RAW,
    acceptance_summary,
    fmt,
    json_clean,
    write_results_csv,
    write_results_md,
)
from nebula.latent import mapcache


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
        base = _base_config(config, data, overrides, epochs, device, quiet_training or jobs > 1)
        return _compare(base, list(variants), list(seeds), Path(out), tsne=tsne, overwrite=overwrite,
                        threads=threads, jobs=jobs, log=log, command=command)
    finally:
        torch.set_num_threads(previous_threads)


def _compare(base: Config, variants: list[str], seeds: list[int], out: Path, *, tsne: bool, overwrite: bool,
             threads: int | None, jobs: int, log: Callable[[str], None], command: str | None) -> CompareResult:
    """The grid of :func:`compare` for the base configuration ``base`` (its options resolved)."""
    t_start = time.perf_counter()
    load_start = _load_average()
    from nebula.run import load_dataset

    for v in variants:
        if v not in VARIANTS:
            raise ConfigError(f"unknown variant '{v}'; choose from {', '.join(VARIANTS)}")
    if len(set(variants)) != len(variants) or len(set(seeds)) != len(seeds):
        raise ConfigError("--variants and --seeds must not repeat entries")
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
            f"{res['eval_seconds']:4.1f} s eval | anchor ACC {fmt(sm['anchor_acc'])}  k-means ACC "
            f"{fmt(sm['kmeans_acc'])}  NMI {fmt(sm['kmeans_nmi'])}  kNN-10 {fmt(sm['knn10'])}  "
            f"probe {fmt(sm['linear_probe'])}  rec {fmt(sm['rec_test'], 2)}")

    # anchored variants first (the longest runs: a t-SNE placement), so that the pool ends with short runs
    order = sorted(tasks, key=lambda task: not task[2].model.use_anchors)
    if jobs == 1:  # one process: the runs share t-SNE maps through mapcache's memory
        for v, s, cfg in order:
            report(v, s, train_and_evaluate(cfg, dataset, overwrite))
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        maps = Path(tempfile.mkdtemp(dir=out, prefix=".maps-"))  # the workers share t-SNE maps here (mapcache)
        try:
            with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                                     initializer=_worker_start, initargs=(threads or 1, str(maps))) as pool:
                futures = {pool.submit(train_and_evaluate, cfg, dataset, overwrite): (v, s) for v, s, cfg in order}
                for fut in as_completed(futures):
                    report(*futures[fut], fut.result())
        finally:
            shutil.rmtree(maps, ignore_errors=True)
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
        "command": command or "nebula.experiments.grid.compare(...)",
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
    (out / "summary.json").write_text(json.dumps(json_clean(summary_json), indent=1))
    result.report = write_report(out / "report.html", rows, context, summary, figures)
    log(f"compare finished in {elapsed:.0f} s; report: {result.report}")
    return result


def _worker_start(threads: int, maps: str) -> None:
    """Initializer of a compare's worker process: torch threads, and the folder of shared t-SNE maps."""
    torch.set_num_threads(threads)
    mapcache.use_folder(maps)


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
    base.override(list(overrides))
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


def command_line() -> str:
    """The current process's command line, shell-quoted (recorded in reports)."""
    args = [Path(sys.argv[0]).name] + sys.argv[1:]
    return " ".join(shlex.quote(a) for a in args)


__all__ = ["compare", "CompareResult", "baseline_rows", "parse_list", "command_line", "train_and_evaluate"]
