"""The ``nebula`` command: a thin layer over the Python API.

Subcommands register themselves with :func:`command`; modules listed in ``COMMAND_MODULES`` are
imported on start so each feature keeps its command next to its code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from pathlib import Path

from nebula.config import VARIANTS, Config
from nebula.errors import ConfigError, NebulaError

Handler = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Handler]] = {}
COMMAND_MODULES: list[str] = ["nebula.evaluate.commands", "nebula.contrastive.commands"]


def command(name: str, help: str, arguments: Callable[[argparse.ArgumentParser], None]) -> Callable[[Handler], Handler]:
    """Register ``handler(args) -> exit code`` as ``nebula NAME`` with ``arguments(parser)``."""

    def wrap(fn: Handler) -> Handler:
        COMMANDS[name] = (help, arguments, fn)
        return fn

    return wrap


# ---------------------------------------------------------------------------- shared options
def add_data_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", help="registered dataset name (digits) or a file/folder path")
    p.add_argument("--modality", help="image, points, voxels or text (default: detected)")
    p.add_argument("--task", help="reconstruct (default) or complete (3D: partial input, complete target); same as --data-option task=...")
    p.add_argument("--data-option", action="append", default=[], metavar="KEY=VALUE",
                   help="loader option, e.g. labels=fine (repeatable); same as --set data.options.KEY=VALUE")


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """The reference's short flags and the common model/training options."""
    g = p.add_argument_group("reference flags")
    g.add_argument("-c", "--conv", action="store_true", help="convolutional encoder/decoder (stride-2 convs)")
    g.add_argument("-f", "--fire", action="store_true", help="SqueezeNet fire modules (with -c)")
    g.add_argument("-v", "--variational", action="store_true", help="variational (Gaussian) latent")
    g.add_argument("-m", "--metric", "--anchors-on", dest="anchors_on", action="store_true",
                   help="nebula anchors in latent space (and metric learning with -r)")
    g.add_argument("-r", "--order", type=int, choices=[0, 1, 2, 3, -1], help="metric-learning order (with -m)")
    g.add_argument("-o", "--output", help="run folder to write")
    p.add_argument("--variant", help=f"named variant: {', '.join(VARIANTS)} (instead of -v/-m/-r)")
    p.add_argument("--anchors", type=int, help="number of anchors m")
    p.add_argument("--latent-dim", type=int, help="latent dimension d")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="auto (cuda if available), cpu, cuda, cuda:N")
    p.add_argument("--grad-clip", type=float, help="clip the gradient norm to this value (0 = off; train.grad_clip)")
    p.add_argument("--precision", choices=["fp32", "bf16"], help="bf16 autocast (for GPUs; train.precision)")
    p.add_argument("--config", help="YAML configuration file (sections data, model, loss, train)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. loss.beta=0.5 (repeatable)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def config_from_args(args: argparse.Namespace) -> Config:
    """Defaults < --config < --variant or reference flags < explicit options < --set."""
    cfg = Config.from_yaml(args.config) if getattr(args, "config", None) else Config()
    flags_given = args.variational or args.anchors_on or args.order is not None
    if args.variant:
        if flags_given:
            raise ConfigError("give either --variant or the flags -v/-m/-r, not both")
        cfg.apply_variant(args.variant)
    elif flags_given or not args.config:
        if args.order not in (None, 0) and not args.anchors_on and "loss.supervised=true" not in [s.replace(" ", "").lower() for s in args.set]:
            raise ConfigError("-r (metric order) needs -m: the pseudo-labels come from the anchors")
        cfg.model.variational = bool(args.variational)
        cfg.model.use_anchors = bool(args.anchors_on)
        cfg.loss.metric_order = args.order or 0
    if args.fire:
        cfg.model.arch = "fire"
    elif args.conv:
        cfg.model.arch = "conv"
    if getattr(args, "data", None):
        cfg.data.source = args.data
    if getattr(args, "modality", None):
        cfg.data.modality = args.modality
    if getattr(args, "task", None):
        cfg.data.options["task"] = args.task
    for item in getattr(args, "data_option", []):
        set_options(cfg, [f"data.options.{item}"])
    direct = {"anchors": ("model", "num_anchors"), "latent_dim": ("model", "latent_dim"), "epochs": ("train", "epochs"),
              "batch_size": ("train", "batch_size"), "lr": ("train", "lr"), "seed": ("train", "seed"), "device": ("train", "device"),
              "grad_clip": ("train", "grad_clip"), "precision": ("train", "precision")}
    for arg, (section, key) in direct.items():
        value = getattr(args, arg, None)
        if value is not None:
            setattr(getattr(cfg, section), key, value)
    if args.quiet:
        cfg.train.quiet = True
    if args.output:
        cfg.output = args.output
    set_options(cfg, args.set)
    return cfg


def set_options(cfg: Config, items: list[str]) -> None:
    """``--set`` items; ``data.options.KEY=VALUE`` sets one loader option."""
    import yaml

    rest = []
    for item in items:
        if item.startswith(("data.options.", "model.options.")) and "=" in item:
            key, value = item.split("=", 1)
            section, _, name = key.split(".", 2)
            getattr(cfg, section).options[name] = yaml.safe_load(value) if value else value
        else:
            rest.append(item)
    cfg.override(rest)


# ---------------------------------------------------------------------------- train / embed
def _train_arguments(p: argparse.ArgumentParser) -> None:
    add_data_arguments(p)
    add_model_arguments(p)
    p.add_argument("--resume", metavar="RUN", help="continue the run in this folder from its last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace a finished run in the output folder")


@command("train", "train a Nebula Variational Coding model (ae, vae, tae, tvae, nvc-ml)", _train_arguments)
def cmd_train(args: argparse.Namespace) -> int:
    from nebula.run import train

    if args.resume:
        cfg = Config(output=args.resume)
        run = train(cfg, resume=True)
    else:
        cfg = config_from_args(args)
        if not cfg.output:
            cfg.output = str(Path("runs") / f"{Path(cfg.data.source).stem}-{cfg.variant}-seed{cfg.train.seed}")
        run = train(cfg, overwrite=args.overwrite)
    rows = _last_row(run)
    print(f"run folder: {run.run_dir}  ({run.info.get('train_seconds', 0):.1f} s training){rows}")
    return 0


def _last_row(run) -> str:
    path = Path(run.run_dir) / "metrics.csv"
    if not path.exists():
        return ""
    lines = path.read_text().strip().splitlines()
    header, last = lines[0].split(","), lines[-1].split(",")
    keep = [f"{k}={v}" for k, v in zip(header, last) if k not in ("epoch", "lr", "seconds", "reseeded") and v]
    return "\nfinal epoch: " + " ".join(keep)


def _embed_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="a finished run folder")
    p.add_argument("--data", required=True, help="dataset name or path to embed")
    p.add_argument("--out", required=True, help="output .npz (z, assign, anchors, y, split, rec)")
    p.add_argument("--device", default="auto")
    p.add_argument("--data-option", action="append", default=[], metavar="KEY=VALUE")


@command("embed", "embed data with a trained run into an .npz", _embed_arguments)
def cmd_embed(args: argparse.Namespace) -> int:
    import yaml

    from nebula.run import compute_embeddings, load, save_embeddings
    from nebula.train.trainer import resolve_device

    device = resolve_device(args.device)
    run = load(args.run, device=str(device))
    options = {k: yaml.safe_load(v) for k, _, v in (o.partition("=") for o in args.data_option)}
    ds = run.load_data(args.data, **options)
    if ds.input_shape != tuple(run.info["input_shape"]) and run.info.get("modality") == "image":
        raise NebulaError(f"{args.data}: samples have shape {ds.input_shape}, the run was trained on {tuple(run.info['input_shape'])}")
    emb = compute_embeddings(run.model, ds, device)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_embeddings(out, emb)
    print(f"wrote {out}: z {emb['z'].shape}")
    return 0


# ---------------------------------------------------------------------------- entry point
def build_parser() -> argparse.ArgumentParser:
    for module in COMMAND_MODULES:
        importlib.import_module(module)
    parser = argparse.ArgumentParser(prog="nebula", description="Latent space optimization: Nebula Variational Coding and ManifoldCLR")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, arguments, _) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
        arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    handler = COMMANDS[args.command][2]
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
