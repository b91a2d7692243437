"""nebula: latent space optimization for deep representation learning.

Public API: :class:`NebulaEmbedding` (scikit-learn estimator), :class:`NebulaLoss` (the NVC objective for
your own modules), :class:`VariationalLieOperators` (ManifoldCLR's operator module), :func:`train`, :func:`load`,
:func:`nebula.evaluate.evaluate` (a run folder -> eval.json; the subpackage name is kept for it), :class:`Config`, and :func:`nebula.data.load` for datasets.

The names are imported on first use (PEP 562), so ``import nebula`` and ``nebula --help`` do not
load torch or scikit-learn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> module that defines it
_LAZY = {
    "Config": "nebula.config",
    "NebulaError": "nebula.errors",
    "NebulaEmbedding": "nebula.estimator",
    "NebulaLoss": "nebula.nvc.loss",
    "Run": "nebula.run",
    "load": "nebula.run",
    "train": "nebula.run",
    "VariationalLieOperators": "nebula.latent.lie",
}

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names load lazily
    from nebula.config import Config
    from nebula.errors import NebulaError
    from nebula.estimator import NebulaEmbedding
    from nebula.latent.lie import VariationalLieOperators
    from nebula.nvc.loss import NebulaLoss
    from nebula.run import Run, load, train


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'nebula' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = ["Config", "NebulaEmbedding", "NebulaError", "NebulaLoss", "Run", "VariationalLieOperators", "load", "train",
           "__version__"]
