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


@register_renderer("image")
def render_images(grid: np.ndarray, path: Path, title: str = "") -> None:
    """grid: (R, C, ch, H, W) in [0, 1] -> one montage PNG."""
    rows, cols, ch, h, w = grid.shape
    canvas = np.ones((rows * (h + 1) - 1, cols * (w + 1) - 1, ch), dtype=np.float32)
    for r in range(rows):
        for c in range(cols):
            canvas[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = np.transpose(grid[r, c], (1, 2, 0))
    fig, ax = plt.subplots(figsize=(max(3.0, cols * 0.45), max(3.0, rows * 0.45) + 0.4))
    if ch == 1:
        ax.imshow(canvas[..., 0], cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(np.clip(canvas[..., :3], 0, 1), interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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


def latent_scatter(z: np.ndarray, colours: np.ndarray, path: Path, title: str, anchors: np.ndarray | None = None,
                   method: str = "pca", seed: int = 0, max_points: int = 5000) -> None:
    """2-D scatter of latents (centred PCA or t-SNE) coloured by ``colours``; anchors as black stars."""
    rng = np.random.default_rng(seed)
    idx = np.arange(len(z)) if len(z) <= max_points else np.sort(rng.choice(len(z), max_points, replace=False))
    zs, cs = z[idx], colours[idx]
    anchor_xy = None
    if method == "tsne":
        from sklearn.manifold import TSNE

        pts = np.vstack([zs, anchors]) if anchors is not None and len(anchors) else zs
        xy = TSNE(n_components=2, init="pca", random_state=seed, perplexity=min(30, max(2, len(pts) // 4))).fit_transform(pts)
        points, anchor_xy = xy[: len(zs)], (xy[len(zs) :] if len(pts) > len(zs) else None)
    else:
        mean, comps, points = centred_pca(zs)
        if anchors is not None and len(anchors):
            anchor_xy = (anchors - mean) @ comps.T
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    cmap = plt.get_cmap("tab10" if cs.max(initial=0) < 10 else "tab20")
    ax.scatter(points[:, 0], points[:, 1], c=cs % cmap.N, cmap=cmap, vmin=0, vmax=cmap.N - 1, s=4, alpha=0.7, linewidths=0)
    if anchor_xy is not None:
        ax.scatter(anchor_xy[:, 0], anchor_xy[:, 1], marker="*", s=160, c="black", edgecolors="white", linewidths=0.8, label="anchors")
        ax.legend(loc="best", fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("t-SNE 1" if method == "tsne" else "PC 1")
    ax.set_ylabel("t-SNE 2" if method == "tsne" else "PC 2")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@torch.no_grad()
def _decode(model: torch.nn.Module, z: np.ndarray) -> np.ndarray:
    device = next(model.parameters()).device
    model.eval()
    return model.to_data(model.decode(torch.as_tensor(z, dtype=torch.float32, device=device))).float().cpu().numpy()


def run_figures(run: Any, out_dir: Path | None = None, side: int = 10) -> list[Path]:
    """Write the standard figures of a run to ``run_dir/figures``; returns the written paths.

    reconstructions.png (inputs above reconstructions), manifold.png (decoder over the plane of the
    first two principal directions of the latents, +-2 std), manifold_k.png (decoder around anchor k,
    +-1 within-anchor std), latent_pca_{anchor,label}.png (and t-SNE with ``train.tsne``).
    """
    out_dir = Path(out_dir or Path(run.run_dir) / "figures")
    out_dir.mkdir(parents=True, exist_ok=True)
    emb, model, ds = run.embeddings, run.model, run.dataset
    z, assign, anchors, y = emb["z"], emb["assign"], emb["anchors"], emb["y"]
    modality = run.info.get("modality", "image")
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
        rec = _decode(model, z[pick])
        grid = np.stack([ds.x[pick].numpy(), target[pick].numpy() if ds.target is not None else rec, rec][: 3 if ds.target is not None else 2])
        written.append(_render(render, grid, out_dir / "reconstructions.png", "rows: input / reconstruction (test split)"))
        mean, comps, proj = centred_pca(z)
        std = proj.std(0) + 1e-8
        t = np.linspace(-2, 2, side)
        plane = np.array([[a, b] for a in t for b in t]) * std
        written.append(_render(render, _decode(model, mean + plane @ comps).reshape(side, side, *rec.shape[1:]),
                               out_dir / "manifold.png", "decoder over the first two principal directions (+-2 std)"))
        for k, a in enumerate(anchors):
            own = z[assign == k]
            spread = (own - a).std(0).mean() if len(own) > 1 else 0.5
            t5 = np.linspace(-1, 1, 5)
            plane_k = np.array([[p, q] for p in t5 for q in t5]) * spread
            samples = _decode(model, a + plane_k @ comps)
            written.append(_render(render, samples.reshape(5, 5, *rec.shape[1:]), out_dir / f"manifold_{k}.png",
                                   f"anchor {k}: decoder(a_k + grid), {int((assign == k).sum())} latents"))
    methods = ["pca"] + (["tsne"] if run.config.train.tsne else [])
    for method in methods:
        if len(anchors):
            p = out_dir / f"latent_{method}_anchor.png"
            latent_scatter(z, assign, p, f"latents ({method.upper()}) by nearest anchor", anchors, method, seed)
            written.append(p)
        if (y >= 0).any():
            p = out_dir / f"latent_{method}_label.png"
            latent_scatter(z, np.maximum(y, 0), p, f"latents ({method.upper()}) by true label", anchors if len(anchors) else None, method, seed)
            written.append(p)
    return written


def _render(render: Callable, grid: np.ndarray, path: Path, title: str) -> Path:
    render(grid, path, title)
    return path
