"""Figures drawn from a run's saved data (matplotlib, Agg backend, PNG).

Modalities register a *renderer* that draws a grid of data-space samples (images, point clouds,
voxels, sentences); the latent figures are shared by all modalities.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nebula.evaluate.canvas import plt, register_renderer
from nebula.registry import Registry


def _builtins() -> None:
    from nebula.evaluate import geometry, text  # noqa: F401


#: name -> renderer(samples (R, C, *shape) in data space, path, title)
RENDERERS: Registry[Callable[[np.ndarray, Path, str], None]] = Registry("renderer", _builtins)


def renderer_for(modality: str) -> Callable[[np.ndarray, Path, str], None] | None:
    """The renderer the modality's record names (None when it has none)."""
    from nebula.modalities import MODALITIES

    record = MODALITIES.get(modality)
    return RENDERERS.get(record.renderer or record.name) if record is not None else None


#: figure resolution (dots per inch) of every PNG nebula writes
DPI = 110


def save_figure(fig: Any, path: str | Path, title: str = "") -> Path:
    """Give ``fig`` its suptitle, write it to ``path`` as PNG (``DPI``, tight bounding box) and close it."""
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, bbox_inches="tight", pad_inches=0.06)
    plt.close(fig)
    return Path(path)


@register_renderer("image")
def render_images(grid: np.ndarray, path: Path, title: str = "", row_labels: list[str] | None = None,
                  xlabel: str = "", ylabel: str = "") -> None:
    """grid: (R, C, ch, H, W) in [0, 1] -> one montage PNG, tiles on light-grey separators (ink dark on
    white for one channel), a label per row and optional axis labels, no margins."""
    rows, cols, ch, h, w = grid.shape
    gap = max(1, h // 10)
    canvas = np.full((rows * (h + gap) + gap, cols * (w + gap) + gap, 3), 0.82, dtype=np.float32)
    tiles = np.transpose(grid, (0, 1, 3, 4, 2)).astype(np.float32)  # (R, C, H, W, ch)
    tiles = np.repeat(1.0 - tiles, 3, axis=-1) if ch == 1 else np.clip(tiles[..., :3], 0, 1)
    for r in range(rows):
        for c in range(cols):
            y0, x0 = gap + r * (h + gap), gap + c * (w + gap)
            canvas[y0 : y0 + h, x0 : x0 + w] = np.clip(tiles[r, c], 0, 1)
    tile_in = 0.5  # inches per tile, whatever the image size
    fig, ax = plt.subplots(figsize=(cols * tile_in + (0.9 if row_labels or ylabel else 0.1), rows * tile_in + 0.4))
    ax.imshow(canvas, interpolation="nearest", aspect="equal")
    ax.set_xticks([])
    ax.set_yticks([gap + r * (h + gap) + h / 2 for r in range(rows)] if row_labels else [])
    if row_labels:
        ax.set_yticklabels(row_labels[:rows], fontsize=8)
        ax.tick_params(axis="y", length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    save_figure(fig, path)


def centred_pca(z: np.ndarray, k: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean (d,), components (k, d) and projection (N, k) of a centred PCA (fixes the reference's
    uncentred SVD, bug R8)."""
    mean = z.mean(0)
    zc = z - mean
    _, _, vt = np.linalg.svd(zc, full_matrices=False)
    comps = vt[:k]
    if comps.shape[0] < k:
        comps = np.vstack([comps, np.zeros((k - comps.shape[0], z.shape[1]))])
    return mean, comps, zc @ comps.T


def category_colours(n: int) -> list[Any] | None:
    """n distinct qualitative colours (tab10 up to 10, tab20 up to 20), or None above 20 (a colour bar then)."""
    if n > 20:
        return None
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i) for i in range(n)]


def latent_scatter(z: np.ndarray, colours: np.ndarray, path: Path, title: str, anchors: np.ndarray | None = None,
                   method: str = "pca", seed: int = 0, max_points: int = 5000, legend_title: str = "",
                   names: list[str] | None = None) -> None:
    """2-D scatter of latents (centred PCA or t-SNE) coloured by the integer ``colours`` (N,) (negative:
    unlabelled, grey), with a legend of the categories (a colour bar above 20) titled ``legend_title``;
    ``anchors`` (m, d) as stars, numbered; an anchor that owns no latent when colouring by anchor is a
    hollow red star ("dead"). PCA axes give the share of the latent variance they explain."""
    rng = np.random.default_rng(seed)
    colours = np.asarray(colours).astype(np.int64)
    idx = np.arange(len(z)) if len(z) <= max_points else np.sort(rng.choice(len(z), max_points, replace=False))
    zs, cs = z[idx], colours[idx]
    anchor_xy = None
    axis = ("t-SNE 1", "t-SNE 2")
    if method == "tsne":
        from sklearn.manifold import TSNE

        pts = np.vstack([zs, anchors]) if anchors is not None and len(anchors) else zs
        xy = TSNE(n_components=2, init="pca", random_state=seed, perplexity=min(30, max(2, len(pts) // 4))).fit_transform(pts)
        points, anchor_xy = xy[: len(zs)], (xy[len(zs) :] if len(pts) > len(zs) else None)
    else:
        mean, comps, points = centred_pca(zs)
        total = float(((zs - mean) ** 2).sum()) or 1.0
        share = [(points[:, i] ** 2).sum() / total for i in range(2)]
        axis = (f"PC 1 ({share[0]:.0%} of variance)", f"PC 2 ({share[1]:.0%} of variance)")
        if anchors is not None and len(anchors):
            anchor_xy = (anchors - mean) @ comps.T
    by_anchor = legend_title == "anchor"
    cats = np.unique(cs[cs >= 0])
    n_cat = int(max(cats.max(initial=-1) + 1, len(anchors) if by_anchor and anchors is not None else 0))
    palette = category_colours(n_cat)
    from matplotlib.lines import Line2D

    def handle(label: str, **kw: Any) -> Line2D:
        return Line2D([], [], ls="", label=label, **kw)

    fig, ax = plt.subplots(figsize=(6.2, 4.6))
    handles: list[Line2D] = []
    if (cs < 0).any():
        ax.scatter(points[cs < 0, 0], points[cs < 0, 1], s=4, c="0.75", linewidths=0)
        handles.append(handle("none", marker="o", color="0.75", markersize=5))
    if palette is not None:
        for c in cats:
            mask = cs == c
            ax.scatter(points[mask, 0], points[mask, 1], s=4, color=palette[c], alpha=0.75, linewidths=0)
            label = names[c] if names is not None and c < len(names) else str(c)
            handles.append(handle(label, marker="o", color=palette[c], markersize=5))
    else:
        sc = ax.scatter(points[cs >= 0, 0], points[cs >= 0, 1], s=4, c=cs[cs >= 0], cmap="viridis", alpha=0.75, linewidths=0)
        bar = fig.colorbar(sc, ax=ax)
        bar.set_label(legend_title or "category", fontsize=8)
        bar.ax.tick_params(labelsize=7)
    if anchor_xy is not None:
        owned = np.bincount(colours[colours >= 0], minlength=len(anchor_xy))[: len(anchor_xy)] if by_anchor else None
        for k, (ax_x, ax_y) in enumerate(anchor_xy):
            dead = owned is not None and owned[k] == 0
            face = "none" if dead else (palette[k] if by_anchor and palette is not None else "black")
            ax.scatter([ax_x], [ax_y], marker="*", s=190, c="none" if dead else [face],
                       edgecolors="tab:red" if dead else "black", linewidths=1.0 if dead else 0.7, zorder=3)
            ax.annotate(str(k), (ax_x, ax_y), xytext=(4, 4), textcoords="offset points", fontsize=7, zorder=4)
        handles.append(handle("anchor (number = index)", marker="*", color="black", markersize=9))
        if owned is not None and (owned == 0).any():
            handles.append(handle("dead anchor (no latents)", marker="*", markerfacecolor="none",
                                  markeredgecolor="tab:red", markersize=9))
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False,
                  title=legend_title or None, title_fontsize=8, ncol=2 if len(handles) > 14 else 1)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(axis[0], fontsize=8)
    ax.set_ylabel(axis[1], fontsize=8)
    ax.tick_params(labelsize=7)
    save_figure(fig, path)


@torch.no_grad()
def _decode(model: torch.nn.Module, z: np.ndarray, width: int | None = None) -> np.ndarray:
    """Data-space decodings of z; (N, K) token rows are padded with 0 / cut to ``width`` (a bag-of-words
    decoder lists K top words, the inputs have L tokens)."""
    device = next(model.parameters()).device
    model.eval()
    out = model.to_data(model.decode(torch.as_tensor(z, dtype=torch.float32, device=device))).float().cpu().numpy()
    if width is not None and out.ndim == 2 and out.shape[1] != width:
        out = np.pad(out, ((0, 0), (0, max(0, width - out.shape[1]))))[:, :width]
    return out


def run_name(run: Any) -> str:
    """How figures name a run: its folder name, or its variant for a run without a folder."""
    if getattr(run, "run_dir", None):
        return Path(run.run_dir).name
    return str(getattr(getattr(run, "config", None), "variant", "run"))


def run_figures(run: Any, out_dir: Path | None = None, side: int = 10) -> list[Path]:
    """Write the standard figures of a run to ``run_dir/figures``; returns the written paths.

    reconstructions.png (inputs above reconstructions), manifold.png (decoder over the plane of the
    first two principal directions of the latents, +-2 std), manifold_k.png (decoder around each anchor
    k that owns latents, +-1 within-anchor std; none for dead anchors), latent_pca_{anchor,label}.png
    (and t-SNE with ``train.tsne``). Titles name the run (its folder).
    """
    out_dir = Path(out_dir or Path(run.run_dir) / "figures")
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("manifold_*.png"):  # a redraw never keeps the figure of an anchor that died since
        if old.stem.removeprefix("manifold_").isdigit():
            old.unlink()
    emb, model, ds = run.embeddings, run.model, run.dataset
    z, assign, anchors, y = emb["z"], emb["assign"], emb["anchors"], emb["y"]
    modality = run.info.get("modality", "image")
    name = run_name(run)
    written: list[Path] = []
    render = renderer_for(modality)
    if render is not None and hasattr(render, "for_run"):  # renderers needing run context (a text vocabulary)
        render = render.for_run(run)
    seed = run.config.train.seed
    rng = np.random.default_rng(seed)
    if render is not None and ds is not None and hasattr(model, "decode"):
        test = np.flatnonzero(emb["split"] == 1)
        pick = rng.choice(test if len(test) >= side else np.arange(len(z)), size=min(side, len(z)), replace=False)
        target = ds.target if ds.target is not None else ds.x
        width = ds.x.shape[1] if ds.x.dim() == 2 else None
        rec = _decode(model, z[pick], width)
        grid = np.stack([ds.x[pick].numpy(), target[pick].numpy() if ds.target is not None else rec, rec][: 3 if ds.target is not None else 2])
        rows = ["input", "target", "reconstruction"] if ds.target is not None else ["input", "reconstruction"]
        written.append(_render(render, grid, out_dir / "reconstructions.png",
                               f"{name}: test inputs and their reconstructions decode(mu)", row_labels=rows))
        mean, comps, proj = centred_pca(z)
        std = proj.std(0) + 1e-8
        t = np.linspace(-2, 2, side)
        plane = np.array([[a, b] for b in t[::-1] for a in t]) * std  # columns: PC 1 rising; rows: PC 2 falling
        written.append(_render(render, _decode(model, mean + plane @ comps, width).reshape(side, side, *rec.shape[1:]),
                               out_dir / "manifold.png", f"{name}: decoder over the latent PCA plane",
                               xlabel="PC 1: -2 std to +2 std", ylabel="PC 2: +2 std (top) to -2 std"))
        counts = np.bincount(assign[assign >= 0], minlength=len(anchors))
        for k, a in enumerate(anchors):
            if counts[k] == 0:  # a dead anchor decodes nothing the data uses
                continue
            own = z[assign == k]
            spread = (own - a).std(0).mean() if len(own) > 1 else 0.5
            t5 = np.linspace(-1, 1, 5)
            plane_k = np.array([[p, q] for q in t5[::-1] for p in t5]) * spread
            samples = _decode(model, a + plane_k @ comps, width)
            written.append(_render(render, samples.reshape(5, 5, *rec.shape[1:]), out_dir / f"manifold_{k}.png",
                                   f"{name}: around anchor {k} ({int(counts[k])} latents)",
                                   xlabel="PC 1: -1 to +1 within-anchor std", ylabel="PC 2"))
    methods = ["pca"] + (["tsne"] if run.config.train.tsne else [])
    for method in methods:
        if len(anchors):
            p = out_dir / f"latent_{method}_anchor.png"
            latent_scatter(z, assign, p, f"{name}: latents ({method.upper()}) by nearest anchor", anchors, method, seed,
                           legend_title="anchor")
            written.append(p)
        if (y >= 0).any():
            p = out_dir / f"latent_{method}_label.png"
            latent_scatter(z, y, p, f"{name}: latents ({method.upper()}) by true label",
                           anchors if len(anchors) else None, method, seed, legend_title="label", names=class_names(run))
            written.append(p)
    return written


def class_names(run: Any) -> list[str] | None:
    """The dataset's class names when its loader recorded them (``meta['classes']``), else None."""
    meta = getattr(getattr(run, "dataset", None), "meta", None) or (getattr(run, "info", None) or {}).get("dataset") or {}
    names = meta.get("classes") or meta.get("class_names")
    return [str(n) for n in names] if isinstance(names, (list, tuple)) and names else None


def _render(render: Callable, grid: np.ndarray, path: Path, title: str, **labels: Any) -> Path:
    """Call a renderer, passing the row/axis labels it accepts (every renderer takes grid, path, title)."""
    import inspect

    try:
        accepted = inspect.signature(render).parameters
    except (TypeError, ValueError):
        accepted = {}
    render(grid, path, title, **{k: v for k, v in labels.items() if k in accepted})
    return path
