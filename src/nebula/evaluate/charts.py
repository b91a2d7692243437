"""Charts of saved run statistics: latent covariance heat-maps, training curves, anchor usage.

Shared by the single-run report (:mod:`nebula.evaluate.report`) and the comparison report; every chart
has labelled axes, integer ticks where the quantity is a count or an epoch, and a legend or colour bar.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nebula.evaluate import NON_LOSS_COLUMNS
from nebula.evaluate.plots import plt, save_figure

#: metrics.csv loss-term column -> what a reader calls it
TERM_NAMES: dict[str, str] = {
    "loss": "total loss", "rec": "reconstruction", "kl": "KL divergence", "near": "anchor pull (nearest anchor)",
    "neb": "nebula gravitation", "metric": "metric learning", "contrastive": "contrastive (InfoNCE)",
    "transport": "Lie transport", "shift": "coefficient shift", "nll": "token negative log-likelihood",
}


def term_name(term: str) -> str:
    """Human name of a loss term, e.g. ``kl`` -> "KL divergence (kl)"; unknown terms as they are."""
    return f"{TERM_NAMES[term]} ({term})" if term in TERM_NAMES else term


def _integer_ticks(axis, n: int, most: int = 16) -> None:
    """Ticks at 0..n-1 when there are at most ``most``, else integer ticks chosen by matplotlib."""
    from matplotlib.ticker import MaxNLocator

    if n <= most:
        axis.set_ticks(range(n))
    else:
        axis.set_major_locator(MaxNLocator(integer=True))


def covariance_heatmaps(covs: dict[str, np.ndarray], path: Path, title: str = "") -> Path:
    """Heat-maps of (d, d) latent covariance matrices side by side, each on its own symmetric colour
    scale [-max|C|, max|C|] with a labelled colour bar and latent-dimension ticks, titled with the
    off-diagonal energy ratio sum_{i!=j} C_ij^2 / sum_ij C_ij^2."""
    from nebula.evaluate.metrics import off_diagonal_energy_ratio

    n = max(len(covs), 1)
    fig, axes = plt.subplots(1, n, figsize=(3.4 * n + 0.6, 3.4), squeeze=False)
    for ax, (name, cov) in zip(axes[0], covs.items()):
        cov = np.atleast_2d(np.asarray(cov, dtype=np.float64))
        vmax = float(np.abs(cov).max()) if cov.size else 1.0
        im = ax.imshow(cov, cmap="RdBu_r", vmin=-(vmax or 1.0), vmax=vmax or 1.0, interpolation="nearest")
        energy = off_diagonal_energy_ratio(cov) if cov.size else float("nan")
        ax.set_title(f"{name}\noff-diagonal energy {energy:.2f}", fontsize=9)
        _integer_ticks(ax.xaxis, cov.shape[1])
        _integer_ticks(ax.yaxis, cov.shape[0])
        ax.set_xlabel("latent dimension", fontsize=8)
        ax.set_ylabel("latent dimension", fontsize=8)
        ax.tick_params(labelsize=6)
        bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        bar.set_label("covariance", fontsize=8)
        bar.ax.tick_params(labelsize=7)
    return save_figure(fig, path, title)


def training_curves(histories: dict[str, Sequence[dict[str, np.ndarray]]], path: Path, title: str = "") -> Path:
    """One panel per logged loss term (every metrics.csv column but epoch/lr/seconds/reseeded); a line
    per entry of ``histories`` (name -> the metrics.csv columns of one or more seeds) at the mean over
    seeds, with a min-max band when there are several. x: epoch (integer ticks); y: the epoch mean."""
    from matplotlib.ticker import MaxNLocator

    terms: list[str] = []
    for runs in histories.values():
        for h in runs:
            terms += [k for k in h if k not in NON_LOSS_COLUMNS and k not in terms and np.isfinite(h[k]).any()]
    if "loss" in terms:  # the total first
        terms.insert(0, terms.pop(terms.index("loss")))
    last = max([len(h.get("epoch", [])) for runs in histories.values() for h in runs] + [1])
    palette = plt.get_cmap("tab10")
    colour = {name: palette(i % 10) for i, name in enumerate(histories)}  # one colour per entry in every panel
    n = max(len(terms), 1)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 2.9 * rows), squeeze=False)
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
        ax.set_title(term_name(term), fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.set_ylabel("mean over the epoch", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlim(0.6, last + 0.4)  # every panel on the same epochs, terms that start late included
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(terms):]:
        ax.set_axis_off()
    return save_figure(fig, path, title)


def anchor_usage_bars(usages: dict[str, np.ndarray], path: Path, title: str = "") -> Path:
    """Bars of the number of latents owned by each anchor (dead anchors marked red), a panel per entry."""
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    n = max(len(usages), 1)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 2.9), squeeze=False)
    for ax, (name, usage) in zip(axes[0], usages.items()):
        usage = np.asarray(usage)
        dead = int((usage == 0).sum())
        ax.bar(np.arange(len(usage)), usage, color=["tab:red" if u == 0 else "tab:blue" for u in usage])
        ax.set_title(f"{name}: {dead} dead of {len(usage)}", fontsize=9)
        ax.set_xlabel("anchor", fontsize=8)
        ax.set_ylabel("latents owned", fontsize=8)
        _integer_ticks(ax.xaxis, len(usage), most=20)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=7)
        if dead:
            ax.legend(handles=[Patch(color="tab:blue", label="used"), Patch(color="tab:red", label="dead (no latent)")],
                      fontsize=7)
    return save_figure(fig, path, title)
