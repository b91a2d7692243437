"""3D evaluation: Chamfer distance, F-score, voxel IoU, completion gains, and point/voxel renderers.

Metrics on the test split (split 1; every sample when there is none), from the decoder applied to
mu = E(x) (evaluation mode):

* ``chamfer``: CD_mean = mean_i min_j ||x_i - y_j||^2 + mean_j min_i ||y_j - x_i||^2 (squared L2, the
  form of :mod:`nebula.losses.chamfer`), averaged over clouds; clouds live in the unit sphere.
* ``fscore@t``: F = 2 P R / (P + R) with precision P = share of predicted points within distance t
  (not squared) of the target cloud and recall R = share of target points within t of the prediction
  (Tatarchenko et al., 2019); thresholds t = 0.02 and 0.05 (1 % and 2.5 % of the unit sphere's diameter).
* ``iou``: |pred AND target| / |pred OR target| with occupancy = sigmoid output > 0.5, averaged over grids.
* completion (``task=complete``): the same metrics of the *partial input* against the complete target,
  and ``chamfer_reduction`` = 1 - mean CD(pred, complete) / mean CD(partial, complete)
  (``iou_gain`` = mean IoU(pred) - mean IoU(partial) for voxels).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from nebula.evaluate.canvas import plt, register_renderer
from nebula.evaluate.evaluator import register_evaluator
from nebula.losses.chamfer import nearest_squared_distances

FSCORE_THRESHOLDS = (0.02, 0.05)


def _fscore_from(a: torch.Tensor, b: torch.Tensor, threshold: float) -> torch.Tensor:
    """F-score per cloud from nearest squared distances a: (N, P) pred->target and b: (N, Q) target->pred."""
    t2 = threshold * threshold
    precision = (a <= t2).float().mean(1)
    recall = (b <= t2).float().mean(1)
    return torch.where(precision + recall > 0, 2 * precision * recall / (precision + recall).clamp_min(1e-12),
                       torch.zeros_like(precision))


def fscore(pred: torch.Tensor, target: torch.Tensor, threshold: float) -> torch.Tensor:
    """F-score at distance ``threshold`` per cloud: pred (N, P, 3), target (N, Q, 3) -> (N,)."""
    return _fscore_from(*nearest_squared_distances(pred, target), threshold)


def voxel_iou(pred: torch.Tensor, target: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """IoU per grid of occupancies pred, target (N, ...) in [0, 1], both thresholded at ``threshold``: (N,).
    Two empty grids have IoU 1."""
    p = pred.flatten(1) > threshold
    t = target.flatten(1) > threshold
    inter = (p & t).sum(1).float()
    union = (p | t).sum(1).float()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


@torch.no_grad()
def point_metrics(pred: torch.Tensor, target: torch.Tensor, prefix: str = "") -> dict[str, float]:
    """Mean Chamfer (CD_mean) and F-scores of pred vs target clouds (N, P, 3), from one nearest-neighbour pass."""
    a, b = nearest_squared_distances(pred, target)
    out = {f"{prefix}chamfer": float((a.mean(1) + b.mean(1)).mean())}
    for t in FSCORE_THRESHOLDS:
        out[f"{prefix}fscore@{t:g}"] = float(_fscore_from(a, b, t).mean())
    return out


@torch.no_grad()
def reconstruct(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Decoder output in data space for decode(mu(x)): (N, *target_shape) on the CPU (eval mode)."""
    device = next(model.parameters()).device
    model.eval()
    parts = []
    for i in range(0, len(x), batch_size):
        mu = model.embed(x[i : i + batch_size].to(device))
        parts.append(model.to_data(model.decode(mu)).float().cpu())
    return torch.cat(parts)


@register_evaluator("geometry", families=("nvc",))
def geometry_metrics(run: Any, dataset: Any) -> dict[str, Any]:
    """Chamfer / F-score (points) or IoU (voxels) on the test split, with completion baselines."""
    split = np.asarray(dataset.split) if dataset.split is not None else np.zeros(len(dataset), np.int8)
    index = np.flatnonzero(split == 1)
    if len(index) == 0:
        index = np.arange(len(dataset))
    idx = torch.as_tensor(index)
    x = dataset.x[idx]
    target = (dataset.target if dataset.target is not None else dataset.x)[idx]
    completion = dataset.target is not None
    pred = reconstruct(run.model, x)
    out: dict[str, Any] = {"geometry_samples": int(len(index)), "geometry_task": "complete" if completion else "reconstruct"}
    if dataset.modality == "points":
        out.update(point_metrics(pred, target))
        out["chamfer_form"] = "squared L2, mean over points in both directions"
        if completion:
            out.update(point_metrics(x, target, prefix="input_"))
            out["chamfer_reduction"] = 1.0 - out["chamfer"] / max(out["input_chamfer"], 1e-12)
    else:
        out["iou"] = float(voxel_iou(pred, target).mean())
        if completion:
            out["input_iou"] = float(voxel_iou(x, target).mean())
            out["iou_gain"] = out["iou"] - out["input_iou"]
    return out


# =========================================================================== renderers
def _view(ax: Any, limit: float = 1.0) -> None:
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    ax.set_zlim(-limit, limit)
    ax.view_init(elev=20, azim=-60)
    ax.set_axis_off()
    try:
        ax.set_box_aspect((1, 1, 1))
    except AttributeError:  # older matplotlib
        pass


def _grid_figure(rows: int, cols: int) -> tuple[Any, np.ndarray]:
    fig = plt.figure(figsize=(cols * 1.3, rows * 1.3 + 0.3))
    axes = np.empty((rows, cols), dtype=object)
    for r in range(rows):
        for c in range(cols):
            axes[r, c] = fig.add_subplot(rows, cols, r * cols + c + 1, projection="3d")
    return fig, axes


def _finish(fig: Any, path: Path, title: str) -> None:
    if title:
        fig.suptitle(title, fontsize=8)
    fig.subplots_adjust(left=0, right=1, bottom=0, top=0.94 if title else 1, wspace=0, hspace=0)
    fig.savefig(path, dpi=90)
    plt.close(fig)


@register_renderer("points")
def render_points(grid: np.ndarray, path: Path, title: str = "", max_points: int = 512) -> None:
    """grid: (R, C, P, 3) clouds -> R x C matplotlib 3D scatter plots (z up, coloured by height) in one PNG."""
    rows, cols = grid.shape[:2]
    fig, axes = _grid_figure(rows, cols)
    rng = np.random.default_rng(0)
    if rows * cols > 30:  # large grids (manifolds) are drawn small: fewer points keep them fast
        max_points = min(max_points, 256)
    for r in range(rows):
        for c in range(cols):
            pts = np.asarray(grid[r, c]).reshape(-1, 3)
            if len(pts) > max_points:
                pts = pts[rng.choice(len(pts), max_points, replace=False)]
            ax = axes[r, c]
            ax.scatter(pts[:, 0], pts[:, 1], pts[:, 2], s=0.8, c=pts[:, 2], cmap="viridis", vmin=-1, vmax=1, linewidths=0)
            _view(ax)
    _finish(fig, path, title)


@register_renderer("voxels")
def render_voxels(grid: np.ndarray, path: Path, title: str = "", threshold: float = 0.5, max_voxels: int = 1500) -> None:
    """grid: (R, C, 1, D, D, D) occupancies -> R x C 3D plots of the voxels above ``threshold`` drawn as
    square markers at their centres (``ax.voxels`` is too slow for grids of 32^3 on a CPU)."""
    from nebula.data.voxels import voxel_centres

    rows, cols = grid.shape[:2]
    fig, axes = _grid_figure(rows, cols)
    rng = np.random.default_rng(0)
    for r in range(rows):
        for c in range(cols):
            pts = voxel_centres(np.asarray(grid[r, c]).reshape(grid.shape[-3:]), threshold)
            if len(pts) > max_voxels:
                pts = pts[rng.choice(len(pts), max_voxels, replace=False)]
            ax = axes[r, c]
            if len(pts):
                ax.scatter(pts[:, 0], pts[:, 1], pts[:, 2], s=1.5, marker="s", c=pts[:, 2], cmap="viridis",
                           vmin=-1, vmax=1, linewidths=0)
            _view(ax)
    _finish(fig, path, title)
