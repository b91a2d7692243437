"""The method registry: every training method, registered in one place outside any method.

A method is a package (``nebula.nvc``, ``nebula.contrastive``, ...) that registers a
:class:`MethodSpec` under each name ``Config.method`` may take. The spec says which config sections
the method reads (the others are left out of its config.yaml), which family of evaluators applies,
how to name a run (NVC: its variant ae / vae / tae / tvae / nvc-ml), and how to build the model from
the configuration and the data's shapes (:class:`DataShapes`), never from a dataset.
"""

from __future__ import annotations

from typing import Any

from nebula.methods.spec import DataShapes, MethodSpec, register_method
from nebula.registry import Registry

__all__ = ["METHODS", "DataShapes", "MethodSpec", "method_sections", "register_method", "run_config"]


def _builtins() -> None:
    from nebula.contrastive import method as contrastive  # noqa: F401
    from nebula.nvc import method as nvc  # noqa: F401
    from nebula.translation import method as translation  # noqa: F401


METHODS: Registry[MethodSpec] = Registry("method", _builtins)


def method_sections() -> set[str]:
    """Every config section some method owns (the sections a config.yaml leaves out when its method does not read them)."""
    return {s for spec in METHODS.values() for s in spec.sections}


def run_config(cfg: Any) -> dict[str, Any]:
    """``cfg.to_dict()`` without the sections of methods other than ``cfg.method`` (what config.yaml holds)."""
    out = cfg.to_dict()
    spec = METHODS.get(cfg.method)
    if spec is not None:
        for section in method_sections() - set(spec.sections):
            out.pop(section, None)
    return out
