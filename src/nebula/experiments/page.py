"""The comparison's figures (drawn from the saved run folders) and its one-page HTML report."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nebula.evaluate import load_embeddings, read_metrics_csv
from nebula.evaluate import metrics as M
from nebula.evaluate.plots import latent_scatter, renderer_for
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
from nebula.experiments.tables import TABLES, acceptance_text, metric_keys, table_cells


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
                legend = "label" if colour == "label" else ("anchor" if kind == "anchor" else "k-means cluster")
                latent_scatter(z, values, p, f"{v}: {method.upper()} by {what}", shown, method, seed0, legend_title=legend)
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
        f'<p><b>Acceptance check:</b> {html.escape(acceptance_text(summary))}</p>',
    ]
    for title, keys in TABLES + [("Plug-in metrics", [k for k in metric_keys(rows) if "." in k])]:
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
