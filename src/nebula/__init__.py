"""nebula: latent space optimization for deep representation learning.

Public API: :class:`NebulaEmbedding` (scikit-learn estimator), :func:`train`, :func:`load`,
:func:`nebula.evaluate.evaluate` (a run folder -> eval.json; the subpackage name is kept for it), :class:`Config`, and :func:`nebula.data.load` for datasets.
"""

from nebula.config import Config
from nebula.errors import NebulaError
from nebula.estimator import NebulaEmbedding
from nebula.nvc.loss import NebulaLoss
from nebula.run import Run, load, train

__version__ = "0.1.0"



__all__ = ["Config", "NebulaEmbedding", "NebulaError", "NebulaLoss", "Run", "load", "train", "__version__"]
