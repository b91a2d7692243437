"""``nebula translate RUN --input FILE --out FILE``: translate one sentence per line with a trained run."""

from __future__ import annotations

import argparse
import gzip
import os
import sys
from pathlib import Path

from nebula.cli.command import command
from nebula.errors import DataError


def _translate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="a finished translation run folder")
    p.add_argument("--input", required=True, help="source sentences, one a line (.gz accepted; - = stdin)")
    p.add_argument("--out", required=True, help="where the translations go, one a line (.gz written gzipped; - = stdout)")
    p.add_argument("--beam", type=int, help="beam size (1 = greedy; default translation.beam of the run)")
    p.add_argument("--length-penalty", type=float, help="GNMT length penalty alpha (default translation.length_penalty)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="cpu")


def _read(name: str) -> list[str]:
    if name == "-":
        return sys.stdin.read().split("\n")
    from nebula.data.parallel import read_lines

    path = Path(name)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    return read_lines(path)


def _write(name: str, lines: list[str]) -> None:
    text = "".join(f"{line}\n" for line in lines)
    if name == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    path = Path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        data = text.encode("utf-8")
        tmp.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@command("translate", "translate sentences with a trained translation run", _translate_arguments)
def cmd_translate(args: argparse.Namespace) -> int:
    from nebula.train.trainer import resolve_device
    from nebula.translation.api import load_run, translate

    if args.beam is not None and args.beam < 1:
        raise DataError(f"--beam must be >= 1, found {args.beam}")
    run = load_run(args.run, device=str(resolve_device(args.device)))
    lines = _read(args.input)
    if args.input == "-" and lines and lines[-1] == "":
        lines.pop()
    out = translate(run, lines, args.beam, args.length_penalty, max(args.batch_size, 1))
    _write(args.out, out)
    if args.out != "-":
        print(f"wrote {args.out}: {len(out)} translations", file=sys.stderr)
    return 0
