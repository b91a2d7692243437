"""Evaluation of a finished run from its saved files: :func:`evaluate` writes ``eval.json``.

Everything is computed from what the run folder holds (``embeddings.npz``, ``metrics.csv``,
``config.yaml``, ``run.json``), never by re-deriving latents a different way; evaluator plug-ins
registered for the run's modality (:mod:`nebula.evaluate.registry`) may load the model and data.

Sections of the result (and of ``eval.json``):

* ``clustering``: nearest-anchor assignment (``anchor``, runs with anchors) and k-means on the
  latents (``kmeans``, k = number of classes, ``n_init`` restarts) scored against the labels of all
  labelled samples: Hungarian accuracy, purity, NMI (arithmetic), ARI, AMI
  (:mod:`nebula.evaluate.metrics`);
* ``probes``: kNN (cosine, k = 10 and 1) and linear-probe accuracy, fit on split 0 and tested on
  split 1 (:mod:`nebula.evaluate.probes`);
* ``reconstruction`` (NVC runs): the per-sample training reconstruction loss of ``decode(mu)`` on each split;
* ``anchors`` (runs with anchors): usage histogram, dead anchors, pairwise distances, within-anchor spread;
* ``covariance``: latent covariance (d x d) and its off-diagonal energy ratio;
* ``training``: epochs, timings and the last row of every logged loss term;
* ``plugins``: the results of the evaluators registered for the run's (method family, modality);
* ``summary``: flat ``{metric: number}`` of the headline values (one results.csv row).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from nebula.errors import NebulaError

#: flat summary keys, their table headers and which direction is better (+1 higher, -1 lower, 0 neither)
SUMMARY_COLUMNS: list[tuple[str, str, int]] = [
    ("anchor_acc", "anchor ACC", 1),
    ("anchor_purity", "anchor purity", 1),
    ("anchor_nmi", "anchor NMI", 1),
    ("anchor_ari", "anchor ARI", 1),
    ("anchor_ami", "anchor AMI", 1),
    ("kmeans_acc", "k-means ACC", 1),
    ("kmeans_purity", "k-means purity", 1),
    ("kmeans_nmi", "k-means NMI", 1),
    ("kmeans_ari", "k-means ARI", 1),
    ("kmeans_ami", "k-means AMI", 1),
    ("knn10", "kNN-10 (cos)", 1),
    ("knn1", "kNN-1 (cos)", 1),
    ("linear_probe", "linear probe", 1),
    ("rec_test", "test rec. loss", -1),
    ("dead_anchors", "dead anchors", -1),
    ("anchor_min_dist", "min anchor dist.", 0),
    ("anchor_spread", "anchor spread (RMS)", 0),
    ("offdiag_energy", "cov. off-diag energy", 0),
    ("train_seconds", "train s", 0),
]

#: metrics.csv columns that are bookkeeping, not loss terms
NON_LOSS_COLUMNS = ("epoch", "lr", "seconds", "reseeded")


def read_metrics_csv(path: str | Path) -> dict[str, np.ndarray]:
    """Columns of a run's ``metrics.csv`` as float arrays (one value per epoch; blanks are NaN)."""
    path = Path(path)
    if not path.exists():
        return {}
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    keys = list(rows[0].keys()) if rows else []
    out: dict[str, np.ndarray] = {}
    for k in keys:
        vals = []
        for r in rows:
            try:
                vals.append(float(r.get(k) or "nan"))
            except ValueError:
                vals.append(float("nan"))
        out[k] = np.asarray(vals, dtype=np.float64)
    return out


def load_embeddings(run_dir: str | Path) -> dict[str, np.ndarray]:
    """The arrays of ``run_dir/embeddings.npz`` (z, assign, anchors, y, split, rec, ...)."""
    from nebula.files import read_npz

    path = Path(run_dir) / "embeddings.npz"
    if not path.exists():
        raise NebulaError(f"{path}: not found (evaluation needs a finished run folder with embeddings.npz)")
    return read_npz(path, required=("z", "y", "split"))


def evaluate(run_dir: str | Path, *, run: Any = None, dataset: Any = None, write: bool = True,
             plugins: bool = True, kmeans_init: int = 10) -> dict[str, Any]:
    """Evaluate the run in ``run_dir`` from its saved files and write ``run_dir/eval.json``.

    Args:
        run_dir: a finished run folder.
        run, dataset: an already loaded :class:`~nebula.run.Run` and its dataset, handed to the
            evaluator plug-ins (loaded from the folder when a plug-in needs them and they are None).
        write: write ``eval.json``.
        plugins: run the evaluators registered for the run's modality.
        kmeans_init: k-means restarts (``n_init``, >= 10 for reported figures).
    Returns:
        the evaluation (see the module docstring), JSON-compatible (NaN written as null).
    """
    from nebula.config import Config
    from nebula.evaluate import metrics as M
    from nebula.evaluate.probes import probe_scores
    from nebula.files import read_json
    from nebula.methods import METHODS

    run_dir = Path(run_dir)
    for name in ("config.yaml", "run.json"):
        if not (run_dir / name).exists():
            raise NebulaError(f"{run_dir}: not a finished nebula run (missing {name})")
    if write:
        from nebula.files import check_writable_folder

        check_writable_folder(run_dir)  # a read-only run folder is refused before the work, not after
    cfg = Config.from_yaml(run_dir / "config.yaml")
    info = read_json(run_dir / "run.json", "run record")
    if not isinstance(info, dict):
        raise NebulaError(f"{run_dir / 'run.json'}: expected a JSON object, found {type(info).__name__}")
    emb = load_embeddings(run_dir)
    history = read_metrics_csv(run_dir / "metrics.csv")
    seed = cfg.train.seed
    family = METHODS.lookup(cfg.method).family

    z = emb["z"].astype(np.float64)
    y = emb["y"].astype(np.int64)
    split = emb["split"].astype(np.int64)
    anchors = emb.get("anchors", np.zeros((0, z.shape[1])))
    assign = emb.get("assign", np.full(len(z), -1))
    labelled = y >= 0
    classes = np.unique(y[labelled])

    result: dict[str, Any] = {
        "run_dir": str(run_dir),
        "variant": info.get("variant") or METHODS.lookup(cfg.method).run_label(cfg),
        "method": cfg.method,
        "dataset": (info.get("dataset") or {}).get("name", cfg.data.source),
        "modality": info.get("modality", "image"),
        "seed": seed,
        "num_samples": int(len(z)),
        "latent_dim": int(z.shape[1]),
        "num_classes": int(len(classes)),
        "split_kind": (info.get("dataset") or {}).get("split_kind", ""),
    }

    # ---------------------------------------------------------------- clustering (labelled samples)
    clustering: dict[str, Any] = {"samples": int(labelled.sum()), "anchor": None, "kmeans": None}
    if len(classes) >= 2:
        if len(anchors) and (assign >= 0).all():
            clustering["anchor"] = M.clustering_scores(y[labelled], assign[labelled])
            clustering["anchor"]["k"] = int(len(anchors))
        pred = M.kmeans_labels(z[labelled], len(classes), seed=seed, n_init=kmeans_init)
        clustering["kmeans"] = {**M.clustering_scores(y[labelled], pred), "k": int(len(classes)), "n_init": kmeans_init}
    result["clustering"] = clustering

    # ---------------------------------------------------------------- probes
    result["probes"] = probe_scores(z, y, split, seed=seed) if len(classes) >= 2 else None

    # ---------------------------------------------------------------- reconstruction
    rec_section: dict[str, Any] | None = None
    if "rec" in emb:
        rec_section = {"loss": (info.get("architecture") or {}).get("reconstruction", "")}
        rec = emb["rec"].astype(np.float64)
        for name, mask in (("test", split == 1), ("train", split == 0)):
            rec_section[f"{name}_mean"] = float(rec[mask].mean()) if mask.any() else float("nan")
            rec_section[f"{name}_std"] = float(rec[mask].std()) if mask.any() else float("nan")
            rec_section[f"{name}_samples"] = int(mask.sum())
    result["reconstruction"] = rec_section

    # ---------------------------------------------------------------- anchors and covariance
    result["anchors"] = M.anchor_statistics(z, assign, anchors) if len(anchors) and (assign >= 0).all() else None
    result["covariance"] = M.covariance_statistics(z)

    # ---------------------------------------------------------------- training history
    final = {k: float(v[-1]) for k, v in history.items() if k not in NON_LOSS_COLUMNS and len(v) and np.isfinite(v[-1])}
    result["training"] = {
        "epochs": int(len(history.get("epoch", []))),
        "train_seconds": info.get("train_seconds"),
        "seconds_per_epoch": float(np.nanmean(history["seconds"])) if len(history.get("seconds", [])) else None,
        "final": final,
        "terms": [k for k in history if k not in NON_LOSS_COLUMNS],
    }

    # ---------------------------------------------------------------- plug-ins
    result["plugins"] = _run_plugins(run_dir, result["modality"], family, run, dataset) if plugins else {}
    result["summary"] = summarise(result)
    result = _json_clean(result)
    if write:
        from nebula.files import write_text

        write_text(run_dir / "eval.json", json.dumps(result, indent=1))
    return result


def _run_plugins(run_dir: Path, modality: str, family: str, run: Any, dataset: Any) -> dict[str, Any]:
    from nebula.evaluate.registry import evaluators_for

    found = evaluators_for(modality, family)
    out: dict[str, Any] = {}
    if not found:
        return out
    if run is None:
        from nebula.run import load

        run = load(run_dir)
    if dataset is None:
        dataset = run.dataset
    if dataset is None:
        try:
            dataset = run.load_data(run.config.data.source)
        except (NebulaError, OSError) as exc:
            return {name: {"error": f"data not available: {exc}"} for name in found}
    for name, fn in found.items():
        out[name] = fn(run, dataset)
    return out


def summarise(result: dict[str, Any]) -> dict[str, float]:
    """The headline numbers of an evaluation as a flat ``{key: value}`` (keys of ``SUMMARY_COLUMNS``,
    plus ``PLUGIN.METRIC`` for numeric plug-in results); missing values are NaN."""
    nan = float("nan")
    c = result.get("clustering") or {}
    p = result.get("probes") or {}
    a = result.get("anchors") or {}
    s: dict[str, float] = {}
    for part in ("anchor", "kmeans"):
        scores = c.get(part) or {}
        for key, name in (("acc", "accuracy"), ("purity", "purity"), ("nmi", "nmi"), ("ari", "ari"), ("ami", "ami")):
            s[f"{part}_{key}"] = as_float(scores.get(name, nan))
    for key in ("knn10", "knn1", "linear_probe"):
        s[key] = as_float(p.get(key, nan))
    s["rec_test"] = as_float((result.get("reconstruction") or {}).get("test_mean", nan))
    s["dead_anchors"] = as_float(a.get("dead", nan))
    s["anchor_min_dist"] = as_float(a.get("min_distance", nan))
    s["anchor_spread"] = as_float(a.get("mean_spread", nan))
    s["offdiag_energy"] = as_float((result.get("covariance") or {}).get("off_diagonal_energy_ratio", nan))
    s["train_seconds"] = as_float((result.get("training") or {}).get("train_seconds", nan))
    for name, values in (result.get("plugins") or {}).items():
        for k, v in (values or {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                s[f"{name}.{k}"] = float(v)
    return s


def as_float(v: Any) -> float:
    """float(v), or NaN for None and values that are not numbers (summary tables, CSV cells)."""
    try:
        return float(v) if v is not None else float("nan")
    except (TypeError, ValueError):
        return float("nan")


def _json_clean(obj: Any) -> Any:
    """NaN/inf -> None and numpy scalars -> Python numbers, recursively (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): _json_clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _json_clean(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(float(obj)) else None
    return obj


__all__ = ["evaluate", "summarise", "read_metrics_csv", "load_embeddings", "SUMMARY_COLUMNS"]
