"""Training: the method contract, the trainer, callbacks, loggers, state, guards and torchrun support.

``nebula.train(config, ...)`` is also the public training function (:func:`nebula.run.train`): importing a
submodule of this package binds the package to the name ``nebula.train``, so the package itself is callable
and forwards to that function, whatever was imported first.
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _TrainPackage(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from nebula.run import train

        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _TrainPackage
