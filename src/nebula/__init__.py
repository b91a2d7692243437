"""nebula: latent space optimization for deep representation learning.

Public API: :class:`NebulaEmbedding` (scikit-learn estimator), :func:`train`, :func:`load`,
:func:`evaluate` (a run folder -> eval.json), :class:`Config`, and :func:`nebula.data.load` for datasets.
"""

from nebula.config import Config
from nebula.errors import NebulaError
from nebula.estimator import NebulaEmbedding
from nebula.run import Run, load, train

__version__ = "0.1.0"



def evaluate(run_dir, **kwargs):
    """Evaluate a finished run folder from its saved files (see :func:`nebula.evaluate.evaluate`)."""
    from nebula.evaluate import evaluate as _evaluate

    return _evaluate(run_dir, **kwargs)


__all__ = ["Config", "NebulaEmbedding", "evaluate", "NebulaError", "Run", "load", "train", "__version__"]
