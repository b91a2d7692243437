"""The ``nebula`` command: a thin layer over the Python API, a module per command.

Each module of this package registers its subcommand with :func:`command` in :data:`COMMANDS` (the one
registry, :mod:`nebula.registry`); heavy imports happen inside the handlers, so ``nebula --help`` stays quick.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass

from nebula.errors import NebulaError
from nebula.registry import Registry

Handler = Callable[[argparse.Namespace], int]


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    handler: Handler


#: name -> :class:`Command`, in the order ``nebula --help`` lists them
COMMANDS: Registry[Command] = Registry("command", tuple(f"nebula.cli.{m}" for m in (
    "train", "embed", "eval", "compare", "demo", "contrastive")))


def command(name: str, help: str, arguments: Callable[[argparse.ArgumentParser], None]) -> Callable[[Handler], Handler]:
    """Register ``handler(args) -> exit code`` as ``nebula NAME`` with ``arguments(parser)``."""

    def wrap(fn: Handler) -> Handler:
        COMMANDS.register(name, Command(name, help, arguments, fn))
        return fn

    return wrap


# ---------------------------------------------------------------------------- entry point
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nebula", description="Latent space optimization: Nebula Variational Coding and ManifoldCLR")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, cmd in COMMANDS.items():
        p = sub.add_parser(name, help=cmd.help, description=cmd.help)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
        cmd.arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    handler = COMMANDS.lookup(args.command).handler
    try:
        return handler(args)
    except NebulaError as exc:
        if getattr(args, "debug", False):
            raise
        from nebula.train.trainer import TrainingInterrupted

        print(f"nebula: error: {exc}", file=sys.stderr)
        return 130 if isinstance(exc, TrainingInterrupted) else 2
    except KeyboardInterrupt:
        print("nebula: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
