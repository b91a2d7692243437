"""The ``nebula`` command: a thin layer over the Python API, a module per command.

Each module of this package registers its subcommand with :func:`command` in :data:`COMMANDS` (the one
registry, :mod:`nebula.registry`); heavy imports happen inside the handlers, so ``nebula --help`` stays quick.
"""

from __future__ import annotations

import argparse
import sys

from nebula.cli.command import Command, command
from nebula.errors import NebulaError
from nebula.registry import Registry

__all__ = ["COMMANDS", "Command", "build_parser", "command", "main"]

#: how ``nebula --help`` lists the built-in commands (others follow in registration order)
ORDER = ("train", "embed", "eval", "compare", "demo", "contrastive", "translate")

def _builtins() -> None:
    from nebula.cli import compare, contrastive, demo, embed, eval, train, translate  # noqa: F401


#: name -> :class:`~nebula.cli.command.Command`
COMMANDS: Registry[Command] = Registry("command", _builtins)


# ---------------------------------------------------------------------------- entry point
def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The ``nebula`` parser. Given the command line ``argv``, only the chosen subcommand gets its
    options (building some imports heavy modules), so ``nebula --help`` and ``--version`` stay quick."""
    from nebula import __version__

    chosen = next((a for a in argv if not a.startswith("-")), None) if argv is not None else None
    parser = argparse.ArgumentParser(prog="nebula", description="Latent space optimization: Nebula Variational Coding and ManifoldCLR")
    parser.add_argument("--version", action="version", version=f"nebula {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    listed = sorted(COMMANDS.items(), key=lambda item: ORDER.index(item[0]) if item[0] in ORDER else len(ORDER))
    for name, cmd in listed:
        p = sub.add_parser(name, help=cmd.help, description=cmd.help)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
        if argv is None or chosen == name:
            cmd.arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    from nebula.cli import startup

    deferred = startup.defer()  # Ctrl-C during the start-up imports: noted, acted on after them
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        parser = build_parser(argv)
        args = parser.parse_args(argv)
        if args.command:
            import torch  # noqa: F401  the slow import every command needs, under the deferred handler
    except KeyboardInterrupt:  # raised by a handler other than ours (e.g. not the main thread)
        print("nebula: interrupted", file=sys.stderr)
        return 130
    finally:
        interrupted = startup.resume(deferred)
    if interrupted:
        print("nebula: interrupted", file=sys.stderr)
        return 130
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
    except OSError as exc:  # a file-system refusal that no check caught: still one line, never a traceback
        if getattr(args, "debug", False):
            raise
        from nebula.files import os_error_message

        print(f"nebula: error: {os_error_message(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
