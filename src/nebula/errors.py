"""User-facing errors.

Every error a user can cause (bad file, bad option, bad value) is a :class:`NebulaError` with a
one-line message naming the file or key, what was expected and what was found. The CLI prints the
message and exits with code 2; tracebacks are reserved for bugs (or ``--debug``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class NebulaError(ValueError):
    """An error caused by the user's input; its message is the whole story (one line)."""


class DataError(NebulaError):
    """A data file or folder that cannot be read as the expected format."""


class ConfigError(NebulaError):
    """An unknown configuration key or an invalid value."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest of ``choices`` to ``name``, or ``""``."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""
