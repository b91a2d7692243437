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
import json
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nebula.evaluate import NON_LOSS_COLUMNS, load_embeddings, read_metrics_csv
from nebula.evaluate.plots import _decode, latent_scatter, plt, run_figures


# --------------------------------------------------------------------------- figures
def _save(fig, path: str | Path, title: str) -> Path:
    """Give ``fig`` its suptitle, write it to ``path`` as PNG (dpi 100) and close it."""
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def covariance_heatmaps(covs: dict[str, np.ndarray], path: Path, title: str = "") -> Path:
    """Heat-maps of (d, d) latent covariance matrices side by side, each on its own symmetric colour
    scale [-max|C|, max|C|], titled with the off-diagonal energy ratio."""
    from nebula.evaluate.metrics import off_diagonal_energy_ratio

    n = max(len(covs), 1)
    fig, axes = plt.subplots(1, n, figsize=(3.0 * n + 0.6, 3.2), squeeze=False)
    for ax, (name, cov) in zip(axes[0], covs.items()):
        cov = np.asarray(cov, dtype=np.float64)
        vmax = float(np.abs(cov).max()) or 1.0
        im = ax.imshow(cov, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
        ax.set_title(f"{name}\noff-diag energy {off_diagonal_energy_ratio(cov):.2f}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return _save(fig, path, title)


def training_curves(histories: dict[str, Sequence[dict[str, np.ndarray]]], path: Path, title: str = "") -> Path:
    """One panel per logged loss term (every metrics.csv column but epoch/lr/seconds/reseeded); a line
    per entry of ``histories`` (name -> the metrics.csv columns of one or more seeds) at the mean over
    seeds, with a min-max band when there are several."""
    terms: list[str] = []
    for runs in histories.values():
        for h in runs:
            terms += [k for k in h if k not in NON_LOSS_COLUMNS and k not in terms and np.isfinite(h[k]).any()]
    palette = plt.get_cmap("tab10")
    colour = {name: palette(i % 10) for i, name in enumerate(histories)}  # one colour per entry in every panel
    n = max(len(terms), 1)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.9 * rows), squeeze=False)
    for ax, term in zip(axes.flat, terms):
        for name, runs in histories.items():
            curves = [h[term] for h in runs if term in h and np.isfinite(h[term]).any()]
            if not curves:
                continue
            length = min(len(c) for c in curves)
            stack = np.vstack([c[:length] for c in curves])
            epochs = np.arange(1, length + 1)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = np.nanmean(stack, 0)
                lo, hi = np.nanmin(stack, 0), np.nanmax(stack, 0)
            ax.plot(epochs, mean, label=name, lw=1.3, color=colour[name], marker="." if length <= 20 else None)
            if len(curves) > 1:
                ax.fill_between(epochs, lo, hi, color=colour[name], alpha=0.18, lw=0)
        ax.set_title(term, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(terms):]:
        ax.set_axis_off()
    return _save(fig, path, title)


def anchor_usage_bars(usages: dict[str, np.ndarray], path: Path, title: str = "") -> Path:
    """Bars of the number of latents owned by each anchor (dead anchors marked red), a panel per entry."""
    n = max(len(usages), 1)
    fig, axes = plt.subplots(1, n, figsize=(3.4 * n, 2.8), squeeze=False)
    for ax, (name, usage) in zip(axes[0], usages.items()):
        usage = np.asarray(usage)
        colours = ["tab:red" if u == 0 else "tab:blue" for u in usage]
        ax.bar(np.arange(len(usage)), usage, color=colours)
        ax.set_title(f"{name}: {int((usage == 0).sum())} dead of {len(usage)}", fontsize=9)
        ax.set_xlabel("anchor", fontsize=8)
        ax.set_ylabel("latents", fontsize=8)
        ax.tick_params(labelsize=7)
    return _save(fig, path, title)


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
pre{padding:8px;overflow-x:auto}
"""


def html_page(title: str, body: str) -> str:
    """A complete offline HTML document with inline CSS."""
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            f"<h1>{html.escape(title)}</h1>\n{body}\n</body>\n</html>\n")


def html_figure(path: Path, caption: str = "", width: int | None = None) -> str:
    """An ``<figure>`` embedding the PNG at ``path`` as a data URI."""
    style = f' style="width:{width}px"' if width else ""
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{image_uri(path)}" alt="{html.escape(caption or Path(path).stem)}"{style}>{cap}</figure>'


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
def run_report(run_dir: str | Path, result: dict[str, Any] | None = None, tsne: bool = False,
               data_figures: bool = True) -> Path:
    """Draw the figures of one run under ``run_dir/figures`` and write ``run_dir/report.html``.

    Latent scatter by label and by anchor (centred PCA, and t-SNE with ``tsne``), covariance heat-map,
    training curves of every loss term and anchor-usage bars come from the saved files; with
    ``data_figures`` the reconstructions and per-anchor manifold grids are drawn by loading the model
    and the run's data (skipped with a note when the data cannot be read).
    """
    from nebula.errors import NebulaError

    run_dir = Path(run_dir)
    fig_dir = run_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    if result is None:
        path = run_dir / "eval.json"
        if not path.exists():
            from nebula.evaluate import evaluate

            result = evaluate(run_dir)
        else:
            result = json.loads(path.read_text())
    emb = load_embeddings(run_dir)
    z, y = emb["z"], emb["y"]
    anchors = emb.get("anchors", np.zeros((0, z.shape[1])))
    assign = emb.get("assign", np.full(len(z), -1))
    seed = int(result.get("seed") or 0)
    notes: list[str] = []

    if data_figures and not (fig_dir / "reconstructions.png").exists():
        try:
            from nebula.run import load

            run = load(run_dir)
            run.dataset = run.load_data(run.config.data.source)
            run.embeddings = emb
            run_figures(run, fig_dir)
        except (NebulaError, OSError) as exc:
            notes.append(f"reconstructions and manifolds not drawn: {exc}")

    k = max(int(result.get("num_classes") or 0), len(anchors), 2)
    centres, ids, kind = cluster_centres(z, assign, anchors, k, seed)
    for method in ["pca"] + (["tsne"] if tsne else []):
        label_path = fig_dir / f"latent_{method}_label.png"
        shown = centres if kind == "anchor" else None
        if (y >= 0).any() and not label_path.exists():
            latent_scatter(z, np.maximum(y, 0), label_path, f"latents ({method.upper()}) by true label",
                           shown, method, seed)
        cl_path = fig_dir / f"latent_{method}_{'anchor' if kind == 'anchor' else 'kmeans'}.png"
        if not cl_path.exists():
            latent_scatter(z, ids, cl_path, f"latents ({method.upper()}) by nearest {kind} centre", shown, method, seed)
    covariance_heatmaps({result.get("variant", "run"): np.asarray((result.get("covariance") or {}).get("matrix"))},
                        fig_dir / "covariance.png", "latent covariance")
    history = read_metrics_csv(run_dir / "metrics.csv")
    if history:
        training_curves({result.get("variant", "run"): [history]}, fig_dir / "training_curves.png")
    if len(anchors):
        anchor_usage_bars({result.get("variant", "run"): np.bincount(assign, minlength=len(anchors))},
                          fig_dir / "anchor_usage.png")

    body = [f'<p class="note">run folder <code>{html.escape(str(run_dir))}</code>; variant '
            f'<b>{html.escape(str(result.get("variant")))}</b>, dataset {html.escape(str(result.get("dataset")))}, '
            f'{result.get("num_samples")} samples, d = {result.get("latent_dim")}, seed {seed}; '
            f'split: {html.escape(str(result.get("split_kind")))}.</p>']
    body += [f'<p class="note">{html.escape(n)}</p>' for n in notes]
    body.append("<h2>Metrics</h2>")
    body.append(html_table(["metric", "value"], [[k2, _fmt(v)] for k2, v in (result.get("summary") or {}).items()]))
    figures = sorted(fig_dir.glob("*.png"), key=_figure_order)
    body.append("<h2>Figures</h2>")
    body += [html_figure(p, p.stem.replace("_", " "), width=520) for p in figures]
    out = run_dir / "report.html"
    out.write_text(html_page(f"nebula run report: {run_dir.name}", "\n".join(body)))
    return out


def _figure_order(p: Path) -> tuple[int, str]:
    order = ["latent", "covariance", "training", "anchor_usage", "reconstructions", "manifold"]
    for i, prefix in enumerate(order):
        if p.stem.startswith(prefix):
            return i, _natural(p.stem)
    return len(order), p.stem


def _natural(stem: str) -> str:
    head, _, tail = stem.rpartition("_")
    return f"{head}_{int(tail):05d}" if tail.isdigit() else stem
