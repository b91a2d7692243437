"""Tables of a comparison: results.csv (a row per run), aggregation over seeds, results.md and the
acceptance line, from rows that :mod:`nebula.experiments.grid` measured."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nebula.evaluate import SUMMARY_COLUMNS, as_float

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


def fmt(v: Any, digits: int = 3) -> str:
    v = as_float(v)
    return "-" if not math.isfinite(v) else f"{v:.{digits}f}"


def metric_keys(rows: list[dict[str, Any]]) -> list[str]:
    keys = [k for k, _, _ in SUMMARY_COLUMNS]
    for r in rows:
        keys += [k for k in r if "." in k and k not in keys]  # plug-in metrics
    return keys


def write_results_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    """A row per variant x seed (and baseline x seed), a column per metric; blanks for n/a."""
    keys = ["variant", "kind", "seed", "parameters", "epochs"] + metric_keys(rows)
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
    keys = metric_keys(rows)
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
            mean, std, count = stats[k]
            digits = 1 if k in ("train_seconds",) else (2 if k in ("rec_test", "dead_anchors") else 3)
            # one seed has no spread: the mean alone, never a made-up "± 0.000"
            text = f"{mean:.{digits}f} ± {std:.{digits}f}" if count > 1 else f"{mean:.{digits}f}"
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


def acceptance_text(summary: dict[str, Any]) -> str:
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
             f"Acceptance check: {acceptance_text(summary)}", ""]
    for title, keys in TABLES + [("Plug-in metrics", [k for k in metric_keys(rows) if "." in k])]:
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


def json_clean(obj: Any) -> Any:
    """Strict-JSON copy of ``obj`` (NaN -> null)."""
    from nebula.evaluate import _json_clean

    return _json_clean(obj)
