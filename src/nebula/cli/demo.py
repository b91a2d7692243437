"""``nebula demo``: the main job, ae / vae / tae / tvae / nvc-ml on the bundled digits, 3 seeds, report.html."""

from __future__ import annotations

import argparse

from nebula.cli.command import command
from nebula.cli.compare import common_compare_arguments


def _demo_arguments(p: argparse.ArgumentParser) -> None:
    common_compare_arguments(p, demo=True)


@command("demo", "the main job: compare ae, vae, tae, tvae and nvc-ml on digits (3 seeds) and write report.html",
         _demo_arguments)
def cmd_demo(args: argparse.Namespace) -> int:
    from nebula.experiments.grid import command_line, compare, parse_list

    result = compare("digits", variants=parse_list(args.variants, str, "variants"),
                     seeds=parse_list(args.seeds, int, "seeds"), out=args.output, epochs=args.epochs,
                     device=args.device, tsne=args.tsne, overwrite=True, quiet_training=not args.verbose,
                     threads=args.threads, jobs=args.jobs, command=command_line())
    print(f"results: {result.results_md}\nreport: {result.report}")
    return 0
