"""The one registry: every pluggable kind (methods, modalities, data formats, encoders, decoders,
reconstruction losses, backbones, evaluators, renderers, commands) is a :class:`Registry`.

A registry maps names to objects. It is filled by a decorator (or a call), looked up with a
did-you-mean error, listed, and loads its built-in entries lazily, on first use: the module that
owns a registry passes ``load``, a function whose imports bring in the built-in modules. Those
modules register with :func:`register` by the registry's *kind*, importing only this module, never the
owner: imports run one way (owner -> built-ins -> this module), so there is no import circle and
importing nebula stays cheap. Code outside nebula (a plug-in, a test) registers its own entries the
same way, with no change to nebula's files::

    from nebula.registry import register

    @register("encoder", "toy")
    def build_toy(input_shape, cfg): ...
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

#: kind -> its registry, and entries registered for a kind whose registry does not exist yet
_REGISTRIES: dict[str, Registry] = {}
_PENDING: dict[str, dict[str, object]] = {}


def register(kind: str, name: str, obj: object | None = None) -> Callable[[T], T] | object:
    """Register ``obj`` (or, as a decorator, the decorated definition) as ``name`` in the registry of ``kind``
    ("encoder", "decoder", "reconstruction loss", "data format", "dataset", "method", "modality",
    "evaluator", "renderer", "command", "logger", "backbone"). Returns the object."""

    def put(o):
        target = _REGISTRIES.get(kind)
        if target is not None:
            target._entries[name] = o
        else:
            _PENDING.setdefault(kind, {})[name] = o
        return o

    return put(obj) if obj is not None else put


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest of ``choices`` to ``name``, or ``""``."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


class Registry(Generic[T]):
    """Named entries of one kind.

    Args:
        kind: what an entry is, for messages ("encoder", "data format"); :func:`register` finds it by kind.
        load: imports the modules holding the built-in entries; called once, on first lookup or listing.
    """

    def __init__(self, kind: str, load: Callable[[], None] | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, T] = dict(_PENDING.pop(kind, {}))
        self._load_builtins = load
        self._loaded = load is None
        _REGISTRIES[kind] = self

    # ------------------------------------------------------------------ filling
    def register(self, name: str, obj: T | None = None) -> Callable[[T], T] | T:
        """``@registry.register(name)`` on a definition, or ``registry.register(name, obj)``; returns the object.
        A later registration under the same name replaces the earlier one (a plug-in may override)."""
        return register(self.kind, name, obj)

    def unregister(self, name: str) -> None:
        """Remove ``name`` (tests that register toy entries clean up with this)."""
        self._entries.pop(name, None)

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True  # first: a built-in module may look the registry up while it registers
            self._load_builtins()

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
