"""What every figure module shares: matplotlib with the Agg backend (PNG, no display) and the
registration of renderers (``@register_renderer(name)``: ``fn(samples (R, C, *shape) in data space, path,
title)``), which :mod:`nebula.evaluate.plots` looks up by the modality record's ``renderer``."""

from __future__ import annotations

from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from nebula.registry import register  # noqa: E402

__all__ = ["plt", "register_renderer"]


def register_renderer(name: str) -> Callable:
    """Register a renderer under ``name`` (a modality's record names the renderer it uses)."""
    return register("renderer", name)
