"""``nebula compare``: variants x seeds with one architecture and budget (the options ``nebula demo`` shares)."""

from __future__ import annotations

import argparse
import os

from nebula.cli.command import command
from nebula.config import VARIANTS


def common_compare_arguments(p: argparse.ArgumentParser, demo: bool) -> None:
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated variants (default {','.join(VARIANTS)})")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds (default 0,1,2)")
    p.add_argument("-o", "--output", default="runs/demo" if demo else None, help="output folder")
    p.add_argument("--epochs", type=int, help="training epochs per run (default: the configuration's)")
    p.add_argument("--device", help="auto (cuda if available), cpu, cuda, cuda:N")
    p.add_argument("--tsne", action="store_true", help="add a t-SNE scatter grid (slower)")
    p.add_argument("--verbose", action="store_true", help="show each run's training progress bar")
    if demo:
        p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                       help="runs trained at once in worker processes of 1 thread each (default: 2, or 1 on a "
                            "1-core machine); the results do not depend on it")
        p.add_argument("--threads", type=int, default=1,
                       help="torch CPU threads (default 1: the small digits model gains little from more, and a shared "
                            "machine slows multi-threaded runs badly; 0 = torch's default)")
    else:
        p.add_argument("--jobs", type=int, default=1, help="runs trained at once in worker processes (default 1)")
        p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's; 1 is much faster on a busy machine)")


def _compare_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", help="registered dataset name (digits) or a file/folder path (default: the config's)")
    p.add_argument("--modality", help="image, points, voxels or text (default: detected)")
    p.add_argument("--data-option", action="append", default=[], metavar="KEY=VALUE", help="loader option (repeatable)")
    common_compare_arguments(p, demo=False)
    p.add_argument("-c", "--conv", action="store_true", help="convolutional encoder/decoder for every variant")
    p.add_argument("-f", "--fire", action="store_true", help="fire modules for every variant")
    p.add_argument("--anchors", type=int, help="number of anchors m")
    p.add_argument("--latent-dim", type=int, help="latent dimension d")
    p.add_argument("--config", help="base YAML configuration shared by every run")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override for every run, e.g. loss.beta=0.5 or method=... (repeatable)")
    p.add_argument("--overwrite", action="store_true", help="replace finished runs in OUTPUT/runs")


@command("compare", "train variants x seeds with one architecture and budget; results.csv/.md and report.html",
         _compare_arguments)
def cmd_compare(args: argparse.Namespace) -> int:
    from nebula.config import Config
    from nebula.errors import ConfigError
    from nebula.experiments.grid import command_line, compare, parse_list

    if not args.output:
        raise ConfigError("nebula compare needs -o OUTPUT (the folder for runs, tables and report.html)")
    base = Config.from_yaml(args.config) if args.config else Config()
    if args.data:
        base.data.source = args.data
    if args.modality:
        base.data.modality = args.modality
    base.override([f"data.options.{o}" for o in args.data_option] + list(args.set))
    if args.fire:
        base.model.arch = "fire"
    elif args.conv:
        base.model.arch = "conv"
    if args.anchors is not None:
        base.model.num_anchors = args.anchors
    if args.latent_dim is not None:
        base.model.latent_dim = args.latent_dim
    result = compare(variants=parse_list(args.variants, str, "variants"), seeds=parse_list(args.seeds, int, "seeds"),
                     out=args.output, config=base, epochs=args.epochs, device=args.device,
                     tsne=args.tsne, overwrite=args.overwrite, quiet_training=not args.verbose, threads=args.threads,
                     jobs=args.jobs, command=command_line())
    print(f"results: {result.results_csv}, {result.results_md}\nreport: {result.report}")
    return 0
