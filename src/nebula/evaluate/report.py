"""Figures drawn from saved run data and the self-contained HTML report.

Every figure here is computed from what a run folder holds (``embeddings.npz``, ``metrics.csv``,
``eval.json``, the saved weights for data-space samples), so it can be redrawn at any time. The
latent scatter plots reuse :func:`nebula.evaluate.plots.latent_scatter` (centred PCA or t-SNE);
data-space grids use the modality's registered renderer.

``report.html`` files are one page that works offline: CSS inline, every image embedded as a
``data:image/png;base64`` URI, no external links or scripts.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nebula.evaluate import SUMMARY_COLUMNS, load_embeddings, read_metrics_csv

# the charts live in nebula.evaluate.charts; importable from here for the comparison report
from nebula.evaluate.charts import anchor_usage_bars, covariance_heatmaps, training_curves
from nebula.evaluate.plots import _decode, class_names, latent_scatter, run_figures

__all__ = ["anchor_usage_bars", "covariance_heatmaps", "training_curves", "run_report", "html_page", "html_figure",
           "html_table", "cluster_centres", "centre_samples", "image_uri"]


def cluster_centres(z: np.ndarray, assign: np.ndarray, anchors: np.ndarray, k: int, seed: int = 0
                    ) -> tuple[np.ndarray, np.ndarray, str]:
    """The run's anchors (m, d) and nearest-anchor ids (N,), or, for a run without anchors, the
    k-means centres and ids of its latents (k clusters, n_init = 10); plus a word naming which."""
    if len(anchors) and (np.asarray(assign) >= 0).all():
        return np.asarray(anchors), np.asarray(assign), "anchor"
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=max(1, min(k, len(z))), n_init=10, random_state=seed).fit(np.asarray(z, np.float64))
    return km.cluster_centers_.astype(np.float32), km.labels_, "k-means"


def centre_samples(model: Any, z: np.ndarray, assign: np.ndarray, centres: np.ndarray, cols: int = 8,
                   seed: int = 0) -> np.ndarray:
    """Decoded samples around each centre: column 0 decodes the centre c_k itself, the others
    ``c_k + std_k * eps`` with eps ~ N(0, I) and std_k (d,) the per-dimension standard deviation of
    the latents assigned to k (the generative use of NVC anchors). Returns (m, cols, *shape) in data space."""
    rng = np.random.default_rng(seed)
    m, d = centres.shape
    std = np.full((m, d), 0.5, dtype=np.float32)
    for k in range(m):
        own = z[assign == k]
        if len(own) > 1:
            std[k] = own.std(0)
    eps = rng.standard_normal((m, cols, d)).astype(np.float32)
    eps[:, 0] = 0.0
    codes = (centres[:, None, :] + eps * std[:, None, :]).reshape(m * cols, d)
    out = _decode(model, codes)
    return out.reshape(m, cols, *out.shape[1:])


def image_uri(path: Path) -> str:
    """``data:image/png;base64,...`` of a PNG file."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


# --------------------------------------------------------------------------- HTML
_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1400px;color:#222;padding:0 16px}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:2em}
table{border-collapse:collapse;font-size:.85em;margin:8px 0}th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}tr.baseline td{background:#fafafa;font-style:italic}
img{max-width:100%;height:auto}figure{display:inline-block;margin:6px;vertical-align:top}figcaption{font-size:.8em;color:#555}
.grid td{border:none;vertical-align:top;text-align:center}.note{font-size:.85em;color:#444}code,pre{background:#f6f6f6}
pre{padding:8px;overflow-x:auto}figure.wide{display:block;margin:6px 0}figure.wide img{width:100%}
.warn{background:#fff4e5;border-left:4px solid #e8590c;padding:6px 12px;margin:12px 0;font-size:.9em}
.warn ul{margin:4px 0;padding-left:20px}.metrics td:nth-child(3){text-align:left;color:#555}
"""


def html_page(title: str, body: str) -> str:
    """A complete offline HTML document with inline CSS."""
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            f"<h1>{html.escape(title)}</h1>\n{body}\n</body>\n</html>\n")


def html_figure(path: Path, caption: str = "", width: int | None = None, wide: bool = False) -> str:
    """A ``<figure>`` embedding the PNG at ``path`` as a data URI (``wide``: the full page width; ``width``:
    at most that many pixels; a caption under it, captions wrap at the figure's width)."""
    style = ' class="wide"' if wide else (f' style="max-width:{width}px"' if width else "")
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return f'<figure{style}><img src="{image_uri(path)}" alt="{html.escape(caption or Path(path).stem)}">{cap}</figure>'


def html_table(header: Sequence[str], rows: Sequence[Sequence[str]], row_classes: Sequence[str] | None = None,
               escape: bool = True) -> str:
    """A table; cells are escaped unless ``escape`` is False (then they may hold <b> markup)."""
    esc = html.escape if escape else (lambda s: s)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{esc(str(c))}</td>" for c in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


# --------------------------------------------------------------------------- one run
#: summary key -> what it measures (the metrics table of a single-run report)
METRIC_NOTES: dict[str, str] = {
    "anchor_acc": "Hungarian (one-to-one) accuracy of the nearest-anchor clusters against the labels",
    "anchor_purity": "share of samples in their anchor's majority class",
    "anchor_nmi": "normalised mutual information (arithmetic) of anchors and labels",
    "anchor_ari": "adjusted Rand index of anchors and labels",
    "anchor_ami": "adjusted mutual information of anchors and labels",
    "kmeans_acc": "Hungarian accuracy of k-means (k = classes, n_init = 10) on the latents",
    "kmeans_purity": "purity of k-means on the latents",
    "kmeans_nmi": "NMI of k-means on the latents",
    "kmeans_ari": "ARI of k-means on the latents",
    "kmeans_ami": "AMI of k-means on the latents",
    "knn10": "10-nearest-neighbour (cosine) accuracy, fit on the train split, scored on the test split",
    "knn1": "1-nearest-neighbour (cosine) accuracy, train -> test split",
    "linear_probe": "logistic regression on standardised latents, train -> test split",
    "rec_test": "mean per-sample reconstruction loss of decode(mu) on the test split (lower is better)",
    "dead_anchors": "anchors that own no latent",
    "anchor_min_dist": "smallest distance between two anchors",
    "anchor_spread": "RMS distance of the latents to their own anchor",
    "offdiag_energy": "share of the squared latent covariance off the diagonal (0: decorrelated dimensions)",
    "train_seconds": "training wall-clock time in seconds (all sessions of a resumed run)",
}

#: integer-valued summary keys
COUNT_KEYS = ("dead_anchors",)

#: figure stem (prefix) -> (section, caption); ``{k}`` is the anchor number of manifold_k
CAPTIONS: list[tuple[str, str, str]] = [
    ("latent_pca_label", "Latent space", "Latent means (PCA, centred) coloured by true class; stars are the anchors."),
    ("latent_pca_anchor", "Latent space", "Latent means (PCA) coloured by nearest anchor, the model's clusters; "
                                          "a hollow red star is a dead anchor."),
    ("latent_pca_kmeans", "Latent space", "Latent means (PCA) coloured by k-means cluster (the run has no anchors)."),
    ("latent_tsne_label", "Latent space", "t-SNE map of the latent means coloured by true class."),
    ("latent_tsne_anchor", "Latent space", "t-SNE map of the latent means coloured by nearest anchor."),
    ("latent_tsne_kmeans", "Latent space", "t-SNE map of the latent means coloured by k-means cluster."),
    ("covariance", "Latent space", "Covariance of the latent means (d x d) on a symmetric colour scale."),
    ("training_curves", "Training", "Per-epoch mean of every logged loss term (metrics.csv)."),
    ("anchor_usage", "Anchors", "Latents owned by each anchor (nearest anchor); red bars are dead anchors."),
    ("reconstructions", "Data space", "Test-split inputs and their reconstructions decode(mu)."),
    ("manifold_", "Data space", "Decoder around anchor {k}."),
    ("manifold", "Data space", "Decoder over a 10 x 10 grid on the plane of the latents' first two principal "
                               "directions (+-2 std)."),
]

_WIDE = ("training_curves", "covariance", "reconstructions")


def caption_for(stem: str) -> tuple[str, str]:
    """(section, caption) of a figure file stem; unknown figures go to "Other figures" under their name."""
    for prefix, section, caption in CAPTIONS:
        if stem == prefix or (prefix.endswith("_") and stem.startswith(prefix) and stem[len(prefix):].isdigit()):
            return section, caption.format(k=stem.rpartition("_")[2])
    return "Other figures", stem.replace("_", " ")


def metric_rows(summary: dict[str, Any]) -> list[list[str]]:
    """[name, value, what it measures] per finite summary value, in ``SUMMARY_COLUMNS`` order then plug-ins."""
    headers = {k: h for k, h, _ in SUMMARY_COLUMNS}
    order = [k for k, _, _ in SUMMARY_COLUMNS] + sorted(k for k in summary if k not in headers)
    rows = []
    for key in order:
        v = summary.get(key)
        if v is None or (isinstance(v, float) and not math.isfinite(v)):
            continue
        value = str(int(round(v))) if key in COUNT_KEYS else _fmt(float(v), 1 if key == "train_seconds" else 3)
        rows.append([headers.get(key, key), value, METRIC_NOTES.get(key, "plug-in metric")])
    return rows


def run_report(run_dir: str | Path, result: dict[str, Any] | None = None, tsne: bool = False,
               data_figures: bool = True) -> Path:
    """Draw the figures of one run under ``run_dir/figures`` and write ``run_dir/report.html``.

    Latent scatter by label and by anchor (centred PCA, and t-SNE with ``tsne``), covariance heat-map,
    training curves of every loss term and anchor-usage bars come from the saved files; with
    ``data_figures`` the reconstructions and per-anchor manifold grids are drawn by loading the model
    and the run's data (skipped with a note when the data cannot be read). The page opens with the
    run's facts and the warnings of :func:`nebula.evaluate.diagnosis.run_warnings`, then the metrics
    (named, with what each measures) and the captioned figures by section.
    """
    from nebula.errors import NebulaError
    from nebula.evaluate.diagnosis import run_warnings

    run_dir = Path(run_dir)
    fig_dir = run_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    if result is None:
        path = run_dir / "eval.json"
        if not path.exists():
            from nebula.evaluate import evaluate

            result = evaluate(run_dir)
        else:
            from nebula.files import read_json

            result = read_json(path, "evaluation")
    emb = load_embeddings(run_dir)
    z, y = emb["z"], emb["y"]
    anchors = emb.get("anchors", np.zeros((0, z.shape[1])))
    assign = emb.get("assign", np.full(len(z), -1))
    seed = int(result.get("seed") or 0)
    name = run_dir.name
    notes: list[str] = []
    names = None
    if data_figures:
        try:
            from nebula.run import load

            run = load(run_dir)
            names = class_names(run)
            run.dataset = run.load_data(run.config.data.source)
            run.embeddings = emb
            run_figures(run, fig_dir)
            names = class_names(run) or names
        except (NebulaError, OSError) as exc:
            notes.append(f"reconstructions and manifolds not drawn: {exc}")

    k = max(int(result.get("num_classes") or 0), len(anchors), 2)
    centres, ids, kind = cluster_centres(z, assign, anchors, k, seed)
    shown = centres if kind == "anchor" else None
    for method in ["pca"] + (["tsne"] if tsne else []):
        if (y >= 0).any():
            latent_scatter(z, y, fig_dir / f"latent_{method}_label.png",
                           f"{name}: latents ({method.upper()}) by true label", shown, method, seed,
                           legend_title="label", names=names)
        cl_path = fig_dir / f"latent_{method}_{'anchor' if kind == 'anchor' else 'kmeans'}.png"
        latent_scatter(z, ids, cl_path, f"{name}: latents ({method.upper()}) by nearest {kind} centre", shown, method,
                       seed, legend_title="anchor" if kind == "anchor" else "k-means cluster")
    variant = str(result.get("variant", "run"))
    covariance_heatmaps({variant: np.asarray((result.get("covariance") or {}).get("matrix"))},
                        fig_dir / "covariance.png", f"{name}: latent covariance")
    history = read_metrics_csv(run_dir / "metrics.csv")
    if history:
        training_curves({variant: [history]}, fig_dir / "training_curves.png", f"{name}: training curves")
    if len(anchors):
        anchor_usage_bars({variant: np.bincount(assign[assign >= 0], minlength=len(anchors))},
                          fig_dir / "anchor_usage.png", f"{name}: latents per anchor")

    training = result.get("training") or {}
    facts = [["variant", variant], ["dataset", str(result.get("dataset"))],
             ["samples", str(result.get("num_samples"))], ["classes", str(result.get("num_classes"))],
             ["latent dimension d", str(result.get("latent_dim"))], ["anchors m", str(len(anchors))],
             ["epochs", str(training.get("epochs"))], ["seed", str(seed)],
             ["split", str(result.get("split_kind") or "-")], ["run folder", str(run_dir)]]
    body = [html_table(["run", "value"], facts)]
    warnings_ = run_warnings(result)
    if warnings_:
        body.append('<div class="warn"><b>Warnings</b><ul>' + "".join(f"<li>{html.escape(w)}</li>" for w in warnings_)
                    + "</ul></div>")
    body += [f'<p class="note">{html.escape(n)}</p>' for n in notes]
    body.append("<h2>Metrics</h2>")
    body.append('<div class="metrics">' + html_table(["metric", "value", "what it measures"],
                                                     metric_rows(result.get("summary") or {})) + "</div>")
    body.append('<p class="note">Clustering scores use every labelled sample; read-outs are trained on the train split '
                'and scored on the test split; all values are computed from the run folder\'s saved files '
                '(<code>eval.json</code>).</p>')
    sections: dict[str, list[str]] = {}
    for p in sorted(fig_dir.glob("*.png"), key=_figure_order):
        section, caption = caption_for(p.stem)
        small = p.stem.startswith("manifold_")
        width = None if p.stem in _WIDE or p.stem == "training_curves" else (230 if small else 600)
        sections.setdefault(section, []).append(html_figure(p, caption, width=width, wide=p.stem == "training_curves"))
    for section in ("Latent space", "Training", "Anchors", "Data space", "Other figures"):
        if section in sections:
            body.append(f"<h2>{section}</h2>")
            if section == "Data space" and any(p.stem.startswith("manifold_") for p in fig_dir.glob("*.png")):
                body.append('<p class="note">"Decoder around anchor k": a_k plus a 5 x 5 grid on the two principal '
                            "directions of the latents (+-1 within-anchor std); no grid is drawn for a dead anchor.</p>")
            body += sections[section]
    from nebula.files import write_text

    return write_text(run_dir / "report.html", html_page(f"nebula run report: {name}", "\n".join(body)))


def _figure_order(p: Path) -> tuple[int, str]:
    order = ["latent_pca_label", "latent_pca", "latent_tsne_label", "latent", "covariance", "training", "anchor_usage",
             "reconstructions", "manifold"]
    for i, prefix in enumerate(order):
        if p.stem.startswith(prefix):
            return i, _natural(p.stem)
    return len(order), p.stem


def _natural(stem: str) -> str:
    head, _, tail = stem.rpartition("_")
    return f"{head}_{int(tail):05d}" if tail.isdigit() else stem
