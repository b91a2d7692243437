"""Ctrl-C while the command line starts: noted, and acted on once the start-up imports are done.

Python raises KeyboardInterrupt wherever the interpreter is when SIGINT arrives. During the imports of
torch and the data libraries that can be inside a C++ extension's initialisation, which then aborts the
process (``terminate called after throwing an instance of 'pybind11::error_already_set'``, exit -6) or
swallows the exception and carries on. So, while ``nebula`` starts, SIGINT only records itself
(:func:`defer`); :func:`resume` puts the previous handler back and says whether one arrived, and the command
line then exits 130 with one line.
"""

from __future__ import annotations

import signal
from typing import Any


class Deferred:
    """A SIGINT handler that records the signal (``seen``) instead of raising; installed by :func:`defer`."""

    def __init__(self) -> None:
        self.seen = False
        self.previous: Any = None
        self.installed = False

    def __call__(self, signum: int, frame: Any) -> None:  # noqa: ARG002
        self.seen = True


def defer() -> Deferred:
    """Install a recording SIGINT handler (a no-op outside the main thread)."""
    deferred = Deferred()
    try:
        deferred.previous = signal.signal(signal.SIGINT, deferred)
        deferred.installed = True
    except ValueError:  # not the main thread: signals go to the main thread's handler
        pass
    return deferred


def resume(deferred: Deferred) -> bool:
    """Restore the handler :func:`defer` replaced; True when SIGINT arrived meanwhile."""
    if deferred.installed:
        signal.signal(signal.SIGINT, deferred.previous if deferred.previous is not None else signal.default_int_handler)
        deferred.installed = False
    return deferred.seen
