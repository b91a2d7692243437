"""Evaluation of contrastive runs (SimCLR / ManifoldCLR): probes on backbone features, operator diagnostics.

Metrics (``evaluate_contrastive``), all computed from the run's saved embeddings (train split -> test split).
The probes (kNN, linear) and the k-means clustering of the features are the common ``probes`` and
``clustering`` sections of eval.json (:func:`nebula.evaluate.evaluate`); this plug-in adds what is
particular to contrastive runs:

* operator runs: ``transport_ratio`` = sum ||z1 - T(c) z0||^2 / sum ||z1 - z0||^2 over test pairs (two seeded
  augmented views of every test image, c = posterior mean; ``transport_ratio_sampled`` with c ~ q),
  ``active_coefficients`` (mean number of |c_m| > 0.01 per pair), ``operators_used`` (operators whose mean
  |c_m| > 0.01); the few-label probe with and without operator augmentations (:mod:`nebula.contrastive.fewshot`).

Saved beside eval.json: ``contrastive_eval.npz`` (posterior coefficients of the test pairs, prior samples,
operator orbits in feature space) and the figures ``operator_orbits.png`` (each operator's orbit of a few test
features, projected on the features' centred PCA plane), ``operator_orbit_images.png`` (nearest test image
along each orbit) and ``coefficient_usage.png``, redrawable with :func:`draw_figures`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from nebula.evaluate.evaluator import register_evaluator

ACTIVE_TOL = 1e-2


def test_pairs(model: Any, x: torch.Tensor, seed: int, batch_size: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """Backbone features (N, D) of two seeded augmented views of every image in x (eval mode)."""
    device = next(model.parameters()).device
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    z0, z1 = [], []
    for i in range(0, len(x), batch_size):
        v0, v1 = model.augment(x[i : i + batch_size].to(device), gen)
        z0.append(model.embed(v0))
        z1.append(model.embed(v1))
    return torch.cat(z0).float(), torch.cat(z1).float()


@torch.no_grad()
def operator_diagnostics(model: Any, x_test: torch.Tensor, seed: int) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Transport ratio, active coefficients and coefficient usage on test pairs; arrays for the figures."""
    lie = model.lie
    z0, z1 = test_pairs(model, x_test, seed)
    ratio, c_mean = lie.transport_ratio(z0, z1, use_mean=True)
    torch.manual_seed(seed)
    ratio_s, c_sample = lie.transport_ratio(z0, z1, use_mean=False)
    identity = float((z1 - z0)[:, : lie.op_dim].pow(2).sum(1).mean())
    mu_p, b_p = lie.prior_params(z0)
    c_prior = lie.sample(mu_p, b_p, torch.Generator(device=z0.device).manual_seed(seed))
    usage = c_mean.abs().mean(0)
    metrics = {
        "transport_ratio": ratio, "transport_ratio_sampled": ratio_s, "pair_distance_sq": identity,
        "active_coefficients": float((c_mean.abs() > ACTIVE_TOL).float().sum(1).mean()),
        "operators_used": int((usage > ACTIVE_TOL).sum()), "num_operators": int(lie.num_operators),
    }
    arrays = {"c_posterior_mean": c_mean.cpu().numpy(), "c_posterior_sample": c_sample.cpu().numpy(),
              "c_prior_sample": c_prior.cpu().numpy(), "z0_test": z0.cpu().numpy()}
    # orbits: a few test features moved along each operator over +-3 posterior spreads of that coefficient
    spread = c_mean.std(0).clamp_min(1e-2) * 3.0
    steps = torch.linspace(-1.0, 1.0, 9, device=z0.device)
    starts = z0[torch.randperm(len(z0), generator=torch.Generator().manual_seed(seed))[:3].to(z0.device)]
    orbits = torch.stack([torch.stack([lie.operators.orbit(s, m, steps * spread[m]) for m in range(lie.num_operators)])
                          for s in starts])  # (P, M, K, D)
    arrays["orbits"] = orbits.cpu().numpy()
    arrays["orbit_t"] = (steps[None, :] * spread[:, None]).cpu().numpy()
    return metrics, arrays


def draw_figures(arrays: dict[str, np.ndarray], out_dir: Path, images: np.ndarray | None = None,
                 labels: np.ndarray | None = None) -> list[Path]:
    """operator_orbits.png, coefficient_usage.png and (with test ``images``) operator_orbit_images.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nebula.evaluate.plots import centred_pca, renderer_for

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    z = arrays["z0_test"]
    mean, comps, proj = centred_pca(z)
    orbits = arrays["orbits"]  # (P, M, K, D)
    p_count, m_count = orbits.shape[:2]
    cols = min(4, m_count)
    rows = int(np.ceil(m_count / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.8 * rows), squeeze=False)
    for m in range(m_count):
        ax = axes[m // cols, m % cols]
        ax.scatter(proj[:, 0], proj[:, 1], s=2, c=(labels % 10) if labels is not None else "0.7",
                   cmap="tab10", alpha=0.25, linewidths=0)
        for p in range(p_count):
            xy = (orbits[p, m] - mean) @ comps.T
            ax.plot(xy[:, 0], xy[:, 1], "-", color="black", lw=1.2)
            ax.plot(xy[len(xy) // 2, 0], xy[len(xy) // 2, 1], "o", color="red", ms=3)
        ax.set_title(f"operator {m}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    for k in range(m_count, rows * cols):
        axes[k // cols, k % cols].set_axis_off()
    fig.suptitle("orbits expm(t Psi_m) z of test features (centred PCA; red = start)", fontsize=9)
    fig.tight_layout()
    path = out_dir / "operator_orbits.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)

    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    idx = np.arange(m_count)
    ax.bar(idx - 0.2, np.abs(arrays["c_posterior_mean"]).mean(0), width=0.4, label="posterior E|mu_q|")
    ax.bar(idx + 0.2, np.abs(arrays["c_prior_sample"]).mean(0), width=0.4, label="prior E|c|, c ~ p(c|z0)")
    ax.set_xlabel("operator m")
    ax.set_ylabel("mean |c_m| on test pairs")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out_dir / "coefficient_usage.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)

    render = renderer_for("image")
    if images is not None and render is not None:
        # nearest test image (cosine) to each point of the first orbit of every operator
        zn = z / (np.linalg.norm(z, axis=1, keepdims=True) + 1e-12)
        pts = orbits[0]  # (M, K, D)
        pn = pts / (np.linalg.norm(pts, axis=2, keepdims=True) + 1e-12)
        nearest = (pn @ zn.T).argmax(2)  # (M, K)
        grid = images[nearest]
        path = out_dir / "operator_orbit_images.png"
        render(grid, path, "nearest test image along each operator's orbit (rows: operators)")
        written.append(path)
    return written


def fewshot_for_run(model: Any, emb: dict[str, np.ndarray], cc: Any, seed: int) -> dict[str, Any]:
    """The few-label probe on saved train/test embeddings; operator augmentations when the model has them."""
    from nebula.contrastive.fewshot import fewshot_probe

    tr, te = emb["split"] == 0, emb["split"] == 1
    augment = None
    if getattr(model, "lie", None) is not None:
        device = next(model.parameters()).device

        def augment(z: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
            mu, scale = model.lie.prior_params(z.to(device))
            c = model.lie.sample(mu, scale, torch.Generator(device=device).manual_seed(
                int(torch.randint(0, 2**31 - 1, (1,), generator=generator))))
            return model.lie.transport(z.to(device), c).cpu()

    return fewshot_probe(emb["z"][tr], emb["y"][tr], emb["z"][te], emb["y"][te], augment,
                         labels_per_class=cc.fewshot_labels, trials=cc.fewshot_trials, seed=seed)


@register_evaluator("contrastive", modalities=("image",), families=("contrastive",))
def evaluate_contrastive(run: Any, dataset: Any) -> dict[str, Any]:
    """Metrics of a contrastive run (empty for other models); writes contrastive_eval.npz and figures when
    the run has a folder."""
    from nebula.contrastive.learner import ContrastiveLearner

    model = run.model
    if not isinstance(model, ContrastiveLearner):
        return {}
    emb = run.embeddings
    seed = run.config.train.seed
    tr, te = emb["split"] == 0, emb["split"] == 1
    out: dict[str, Any] = {"method": model.method, "head": model.architecture["head"]}
    labelled = emb["y"] >= 0
    if labelled[tr].any() and labelled[te].any():
        out.update(fewshot_for_run(model, emb, run.config.contrastive, seed))
    if model.lie is not None and dataset is not None:
        x_test = dataset.x[torch.from_numpy(np.flatnonzero(dataset.split == 1))]
        metrics, arrays = operator_diagnostics(model, x_test, seed)
        out.update(metrics)
        if run.run_dir is not None:
            np.savez_compressed(Path(run.run_dir) / "contrastive_eval.npz", **arrays)
            y_test = dataset.y[dataset.split == 1] if dataset.y is not None else None
            draw_figures(arrays, Path(run.run_dir) / "figures", x_test.numpy(), y_test)
    return out
