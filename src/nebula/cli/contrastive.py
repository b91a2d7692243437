"""``nebula contrastive``: train SimCLR / ManifoldCLR / baselines on images and evaluate them.

    nebula contrastive --data ../shared/data/usps/usps.h5 --method simclr,manifoldclr --head mlp -o runs/usps-clr

One method writes the standard run folder at ``-o``; several (comma-separated) write ``-o/<method>`` each and a
comparison table ``-o/compare.json`` / ``compare.md`` from their eval.json files. Defaults for contrastive
training (unless given by --config, the options or --set): 40 epochs, batch 512, lr 2e-3, weight decay 1e-4,
cosine schedule.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from nebula.cli.command import command
from nebula.cli.options import add_data_arguments
from nebula.config import Config
from nebula.errors import ConfigError

CONTRASTIVE_DEFAULTS = {"epochs": 40, "batch_size": 512, "lr": 2e-3, "weight_decay": 1e-4}


def _arguments(p: argparse.ArgumentParser) -> None:
    from nebula.contrastive.heads import HEADS
    from nebula.contrastive.learner import METHODS

    add_data_arguments(p)
    p.add_argument("--method", default="manifoldclr", help=f"one or several (comma-separated) of {', '.join(METHODS)}")
    p.add_argument("--head", choices=HEADS, help="projection head (default mlp; directclr always uses direct)")
    p.add_argument("--backbone", help="cnn (default, small images) or resnet18 (CIFAR stem)")
    p.add_argument("-o", "--output", help="run folder (a parent folder when several methods are given)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="auto (cuda if available), cpu, cuda, cuda:N")
    p.add_argument("--config", help="YAML configuration file")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override, e.g. contrastive.num_operators=16 (repeatable)")
    p.add_argument("--no-eval", action="store_true", help="skip the evaluation (probes, operator diagnostics)")
    p.add_argument("--overwrite", action="store_true", help="replace finished runs in the output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--threads", type=int, help="torch CPU threads (1 is faster on a crowded machine)")


def config_for(args: argparse.Namespace, method: str) -> Config:
    """Defaults < contrastive defaults (without --config) < --config < options < --set."""
    if args.config:
        cfg = Config.from_yaml(args.config)
    else:
        cfg = Config()
        for key, value in CONTRASTIVE_DEFAULTS.items():
            setattr(cfg.train, key, value)
    cfg.method = method
    if args.data:
        cfg.data.source = args.data
    if args.modality:
        cfg.data.modality = args.modality
    cfg.override([f"data.options.{item}" for item in args.data_option])
    if args.head:
        cfg.contrastive.head = args.head
    if args.backbone:
        cfg.contrastive.backbone = args.backbone
    for arg, key in (("epochs", "epochs"), ("batch_size", "batch_size"), ("lr", "lr"), ("seed", "seed"), ("device", "device")):
        if getattr(args, arg) is not None:
            setattr(cfg.train, key, getattr(args, arg))
    if args.quiet:
        cfg.train.quiet = True
    cfg.override(args.set)
    return cfg


def evaluate_and_save(run) -> dict:
    """Evaluate a trained run with :func:`nebula.evaluate.evaluate` (writes ``eval.json``, the contrastive
    plug-in's metrics under ``plugins.contrastive``) and return the probes and clustering of its summary with
    the plug-in's metrics."""
    from nebula.evaluate import evaluate

    t0 = time.perf_counter()
    result = evaluate(run.run_dir, run=run, dataset=run.dataset)
    metrics = dict((result.get("plugins") or {}).get("contrastive") or {})
    summary = result.get("summary") or {}
    metrics.update({k: summary[k] for k in ("linear_probe", "knn10", "kmeans_acc", "kmeans_nmi") if k in summary})
    metrics["eval_seconds"] = time.perf_counter() - t0
    metrics["train_seconds"] = run.info.get("train_seconds")
    return metrics


SUMMARY_KEYS = ("linear_probe", "knn10", "kmeans_acc", "kmeans_nmi",
                "fewshot_none_mean", "fewshot_operators_mean", "fewshot_gain_mean", "fewshot_gain_se",
                "transport_ratio", "active_coefficients", "train_seconds")


def comparison_table(results: dict[str, dict]) -> str:
    """Markdown table, one row per method, of the summary metrics."""
    lines = ["| method | " + " | ".join(SUMMARY_KEYS) + " |", "|---" * (len(SUMMARY_KEYS) + 1) + "|"]
    for name, m in results.items():
        cells = [f"{m[k]:.4f}" if isinstance(m.get(k), float) else str(m.get(k, "")) for k in SUMMARY_KEYS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


@command("contrastive", "contrastive learning: simclr, manifoldclr, directclr, mixup, noise", _arguments)
def cmd_contrastive(args: argparse.Namespace) -> int:
    import torch

    from nebula.contrastive.learner import METHODS
    from nebula.run import train

    if args.threads:
        torch.set_num_threads(args.threads)
    methods = [m.strip() for m in args.method.split(",") if m.strip()]
    for m in methods:
        if m not in METHODS:
            raise ConfigError(f"--method {m}: unknown contrastive method; choose from {', '.join(METHODS)}")
    base = Path(args.output) if args.output else None
    results: dict[str, dict] = {}
    for method in methods:
        cfg = config_for(args, method)
        if base is None:
            folder = Path("runs") / f"{Path(cfg.data.source).stem}-{method}-{cfg.contrastive.head}-seed{cfg.train.seed}"
        else:
            folder = base / method if len(methods) > 1 else base
        cfg.output = str(folder)
        run = train(cfg, overwrite=args.overwrite)
        metrics = {"train_seconds": run.info.get("train_seconds")} if args.no_eval else evaluate_and_save(run)
        results[method] = metrics
        shown = " ".join(f"{k}={metrics[k]:.4f}" for k in SUMMARY_KEYS if isinstance(metrics.get(k), float))
        print(f"{method}: run folder {folder}  {shown}", flush=True)
    if len(methods) > 1 and base is not None:
        (base / "compare.json").write_text(json.dumps(results, indent=2))
        (base / "compare.md").write_text(comparison_table(results))
        print(comparison_table(results))
    return 0
