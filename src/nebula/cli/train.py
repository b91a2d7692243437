"""``nebula train``: train an NVC variant (or any method with --set method=...) into a run folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from nebula.cli.command import command
from nebula.cli.options import add_data_arguments, add_model_arguments, config_from_args
from nebula.config import Config


def _train_arguments(p: argparse.ArgumentParser) -> None:
    add_data_arguments(p)
    add_model_arguments(p)
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's; 1 is much faster on a busy machine)")
    p.add_argument("--resume", metavar="RUN", help="continue the run in this folder from its last checkpoint; with "
                   "--epochs N a finished run is extended to N epochs (other changes to the run are refused)")
    p.add_argument("--overwrite", action="store_true", help="replace a finished run in the output folder")


@command("train", "train a Nebula Variational Coding model (ae, vae, tae, tvae, nvc-ml)", _train_arguments)
def cmd_train(args: argparse.Namespace) -> int:
    from nebula.run import train

    set_threads(args.threads)
    if args.resume:
        from nebula.resume import overrides_from_args

        run = train(Config(output=args.resume), resume=True, overwrite=args.overwrite,
                    resume_overrides=overrides_from_args(args))
    else:
        cfg = config_from_args(args)
        if not cfg.output:
            from nebula.run import run_label

            cfg.output = str(Path("runs") / f"{Path(cfg.data.source).stem}-{run_label(cfg)}-seed{cfg.train.seed}")
        run = train(cfg, overwrite=args.overwrite)
    rows = _last_row(run)
    print(f"run folder: {run.run_dir}  ({run.info.get('train_seconds', 0):.1f} s training){rows}")
    print(f"next: nebula eval {run.run_dir}   (eval.json with clustering and probe scores, figures, report.html)")
    return 0


def set_threads(threads: int | None) -> None:
    """``--threads N``: torch CPU threads (N >= 1; None or 0 keeps torch's default)."""
    if threads is None or threads == 0:
        return
    if threads < 0:
        from nebula.errors import ConfigError

        raise ConfigError(f"--threads must be >= 1 (0 = torch's default), found {threads}")
    import torch

    torch.set_num_threads(threads)


def _last_row(run) -> str:
    path = Path(run.run_dir) / "metrics.csv"
    if not path.exists():
        return ""
    lines = path.read_text().strip().splitlines()
    header, last = lines[0].split(","), lines[-1].split(",")
    keep = [f"{k}={v}" for k, v in zip(header, last) if k not in ("epoch", "lr", "seconds", "reseeded") and v]
    return "\nfinal epoch: " + " ".join(keep)
