"""CLI commands of the evaluation suite: ``nebula eval``, ``nebula compare`` and ``nebula demo``."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from nebula.cli import command, set_options
from nebula.config import VARIANTS


# --------------------------------------------------------------------------- eval
def _eval_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="a finished run folder")
    p.add_argument("--no-figures", action="store_true", help="write eval.json only (no figures, no report.html)")
    p.add_argument("--tsne", action="store_true", help="also draw t-SNE latent scatter plots")
    p.add_argument("--no-data", action="store_true",
                   help="draw only figures from saved files (skip reconstructions/manifolds, which read the data)")


@command("eval", "evaluate a finished run from its saved files: eval.json, figures and report.html", _eval_arguments)
def cmd_eval(args: argparse.Namespace) -> int:
    from nebula.evaluate import evaluate

    result = evaluate(args.run)
    s = result["summary"]
    lines = [f"eval.json: {Path(args.run) / 'eval.json'}"]
    for part, name in (("anchor", "nearest anchor"), ("kmeans", "k-means on latents")):
        if s.get(f"{part}_acc") is not None:
            lines.append(f"  {name:20s} ACC {s[f'{part}_acc']:.4f}  purity {s[f'{part}_purity']:.4f}  "
                         f"NMI {s[f'{part}_nmi']:.4f}  ARI {s[f'{part}_ari']:.4f}  AMI {s[f'{part}_ami']:.4f}")
    if s.get("knn10") is not None:
        lines.append(f"  probes (split 0 -> 1)  kNN-10 cos {s['knn10']:.4f}  kNN-1 cos {s['knn1']:.4f}  "
                     f"linear {s['linear_probe']:.4f}")
    if s.get("rec_test") is not None:
        lines.append(f"  test reconstruction loss ({result['reconstruction']['loss']}) {s['rec_test']:.4f}")
    if result.get("anchors"):
        a = result["anchors"]
        lines.append(f"  anchors: {a['used']} used, {a['dead']} dead, min distance {a['min_distance']:.3f}, "
                     f"RMS spread {a['mean_spread']:.3f}")
    lines.append(f"  latent covariance off-diagonal energy {s['offdiag_energy']:.3f}")
    for name, values in (result.get("plugins") or {}).items():
        lines.append(f"  {name}: {json.dumps(values)[:200]}")
    if not args.no_figures:
        from nebula.evaluate.report import run_report

        lines.append(f"report: {run_report(args.run, result, tsne=args.tsne, data_figures=not args.no_data)}")
    print("\n".join(lines))
    return 0


# --------------------------------------------------------------------------- compare / demo
def _common_compare_arguments(p: argparse.ArgumentParser, demo: bool) -> None:
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
    _common_compare_arguments(p, demo=False)
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
    from nebula.evaluate.compare import command_line, compare, parse_list

    if not args.output:
        raise ConfigError("nebula compare needs -o OUTPUT (the folder for runs, tables and report.html)")
    base = Config.from_yaml(args.config) if args.config else Config()
    if args.data:
        base.data.source = args.data
    if args.modality:
        base.data.modality = args.modality
    set_options(base, [f"data.options.{o}" for o in args.data_option] + list(args.set))
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


def _demo_arguments(p: argparse.ArgumentParser) -> None:
    _common_compare_arguments(p, demo=True)


@command("demo", "the main job: compare ae, vae, tae, tvae and nvc-ml on digits (3 seeds) and write report.html",
         _demo_arguments)
def cmd_demo(args: argparse.Namespace) -> int:
    from nebula.evaluate.compare import command_line, compare, parse_list

    result = compare("digits", variants=parse_list(args.variants, str, "variants"),
                     seeds=parse_list(args.seeds, int, "seeds"), out=args.output, epochs=args.epochs,
                     device=args.device, tsne=args.tsne, overwrite=True, quiet_training=not args.verbose,
                     threads=args.threads, jobs=args.jobs, command=command_line())
    print(f"results: {result.results_md}\nreport: {result.report}")
    return 0
