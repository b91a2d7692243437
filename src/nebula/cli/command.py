"""The command record and ``@command(name, help, arguments)``, with which each module of this package
registers its subcommand."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from nebula.registry import register

Handler = Callable[[argparse.Namespace], int]


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    handler: Handler


def command(name: str, help: str, arguments: Callable[[argparse.ArgumentParser], None]) -> Callable[[Handler], Handler]:
    """Register ``handler(args) -> exit code`` as ``nebula NAME`` with ``arguments(parser)``."""

    def wrap(fn: Handler) -> Handler:
        register("command", name, Command(name, help, arguments, fn))
        return fn

    return wrap
