"""Warnings a reader of a run's evaluation should see first: dead anchors, one anchor owning most of
the latents, collapsed latent dimensions, anchors never placed.

Every check reads the saved evaluation (``eval.json``, :func:`nebula.evaluate.evaluate`) and scales
with the run: shares are relative to the number of anchors, variances to the largest latent variance.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: a latent dimension is "inactive" below this share of the largest per-dimension variance
INACTIVE_SHARE = 0.01

#: variants whose model places anchors
ANCHOR_VARIANTS = ("tae", "tvae", "nvc-ml")


def run_warnings(result: dict[str, Any]) -> list[str]:
    """One-sentence warnings for an evaluation ``result`` (empty when nothing looks wrong)."""
    out: list[str] = []
    a = result.get("anchors") or {}
    if a:
        m, dead = int(a.get("num_anchors") or 0), int(a.get("dead") or 0)
        if dead:
            used = m - dead
            out.append(f"{dead} of {m} anchors own no latent (dead): the nearest-anchor clustering uses only "
                       f"{used} cluster{'s' if used != 1 else ''}{_dead_hint(result)}.")
        frac = np.asarray(a.get("usage_fraction") or [], dtype=np.float64)
        if m >= 3 and len(frac) and frac.max() > max(0.5, 2.0 / m):
            out.append(f"anchor {int(frac.argmax())} owns {frac.max():.0%} of the latents (a uniform share is "
                       f"{1.0 / m:.0%}): the clusters have collapsed onto few anchors.")
    elif result.get("variant") in ANCHOR_VARIANTS:
        out.append("this variant uses anchors but the run has no anchor assignment: the anchors were never placed "
                   "(training ended before train.pretrain_epochs?).")
    var = np.asarray((result.get("covariance") or {}).get("variances") or [], dtype=np.float64)
    if len(var):
        top = float(var.max())
        if not np.isfinite(top) or top <= 1e-12:
            out.append("every latent dimension has (almost) zero variance: the latents collapsed to a point.")
        else:
            inactive = int((var < INACTIVE_SHARE * top).sum())
            if inactive:
                out.append(f"{inactive} of {len(var)} latent dimensions carry less than {INACTIVE_SHARE:.0%} of the "
                           "largest dimension's variance (inactive: posterior collapse for a VAE).")
    return out


def _dead_hint(result: dict[str, Any]) -> str:
    epochs = int((result.get("training") or {}).get("epochs") or 0)
    return f" after {epochs} epochs" if epochs else ""
