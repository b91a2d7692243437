"""The one registry: every pluggable kind (methods, modalities, data formats, encoders, decoders,
reconstruction losses, backbones, evaluators, renderers, commands) is a :class:`Registry`.

A registry maps names to objects. It is filled by a decorator (or a call), looked up with a
did-you-mean error, listed, and loads its built-in entries lazily: ``builtins`` names the modules
that register them, imported on first use, so importing nebula stays cheap and no module imports
another one just to make it register itself. Code outside nebula (a plug-in, a test) registers
its own entries the same way, with no change to nebula's files::

    from nebula.nn import ENCODERS

    @ENCODERS.register("toy")
    def build_toy(input_shape, cfg): ...
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest of ``choices`` to ``name``, or ``""``."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


class Registry(Generic[T]):
    """Named entries of one kind.

    Args:
        kind: what an entry is, for messages ("encoder", "data format").
        builtins: modules that register the built-in entries; imported once, on first lookup or listing.
    """

    def __init__(self, kind: str, builtins: Iterable[str] = ()) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._builtins = tuple(builtins)
        self._loaded = not self._builtins

    # ------------------------------------------------------------------ filling
    def register(self, name: str, obj: T | None = None) -> Callable[[T], T] | T:
        """``@registry.register(name)`` on a definition, or ``registry.register(name, obj)``; returns the object.
        A later registration under the same name replaces the earlier one (a plug-in may override)."""
        if obj is not None:
            self._entries[name] = obj
            return obj

        def wrap(fn: T) -> T:
            self._entries[name] = fn
            return fn

        return wrap

    def unregister(self, name: str) -> None:
        """Remove ``name`` (tests that register toy entries clean up with this)."""
        self._entries.pop(name, None)

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True  # first: a builtin module may look the registry up while it registers
            for module in self._builtins:
                importlib.import_module(module)

    # ------------------------------------------------------------------ reading
    def lookup(self, name: str) -> T:
        """The entry ``name``; :class:`nebula.errors.ConfigError` naming the closest and the known ones otherwise."""
        self._load()
        if name not in self._entries:
            from nebula.errors import ConfigError

            raise ConfigError(f"unknown {self.kind} '{name}'{did_you_mean(name, self._entries)}; "
                              f"known: {', '.join(self.names())}")
        return self._entries[name]

    def get(self, name: str, default: T | None = None) -> T | None:
        self._load()
        return self._entries.get(name, default)

    def names(self) -> list[str]:
        """Registered names, sorted."""
        self._load()
        return sorted(self._entries)

    def items(self) -> list[tuple[str, T]]:
        """(name, entry) in registration order."""
        self._load()
        return list(self._entries.items())

    def values(self) -> list[T]:
        self._load()
        return list(self._entries.values())

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __getitem__(self, name: str) -> T:
        return self.lookup(name)

    def __iter__(self) -> Iterator[str]:
        self._load()
        return iter(list(self._entries))

    def __len__(self) -> int:
        self._load()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"
