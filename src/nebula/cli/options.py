"""Options shared by several commands: data, the reference flags, and the config they make."""

from __future__ import annotations

import argparse

from nebula.config import VARIANTS, Config
from nebula.errors import ConfigError


def add_data_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", help="registered dataset name (digits) or a file/folder path")
    p.add_argument("--modality", help="image, points, voxels or text (default: detected)")
    p.add_argument("--task", help="reconstruct (default) or complete (3D: partial input, complete target); same as --data-option task=...")
    p.add_argument("--data-option", action="append", default=[], metavar="KEY=VALUE",
                   help="loader option, e.g. labels=fine (repeatable); same as --set data.options.KEY=VALUE")


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """The reference's short flags and the common model/training options."""
    from nebula.config import ModelConfig, TrainConfig

    g = p.add_argument_group("reference flags")
    g.add_argument("-o", "--output", help="run folder to write (default: runs/DATA-VARIANT-seedSEED)")
    g.add_argument("-c", "--conv", action="store_true", help="convolutional encoder/decoder (stride-2 convs; the default for images from 16x16)")
    g.add_argument("-f", "--fire", action="store_true", help="SqueezeNet fire modules (with -c)")
    g.add_argument("-v", "--variational", action="store_true", help="variational (Gaussian) latent")
    g.add_argument("-m", "--metric", "--anchors-on", dest="anchors_on", action="store_true",
                   help="nebula anchors in latent space (and metric learning with -r)")
    g.add_argument("-r", "--order", type=int, choices=[0, 1, 2, 3, -1], help="metric-learning order (with -m)")
    p.add_argument("--variant", help=f"named variant: {', '.join(VARIANTS)} (instead of -v/-m/-r)")
    p.add_argument("--anchors", type=int, help=f"number of anchors m (default {ModelConfig.num_anchors})")
    p.add_argument("--latent-dim", type=int, help=f"latent dimension d (default {ModelConfig.latent_dim})")
    p.add_argument("--epochs", type=int, help=f"training epochs (default {TrainConfig.epochs}; the anchors are placed "
                                              f"after train.pretrain_epochs = {TrainConfig.pretrain_epochs})")
    p.add_argument("--batch-size", type=int, help=f"samples per optimiser step (default {TrainConfig.batch_size})")
    p.add_argument("--lr", type=float, help=f"Adam learning rate (default {TrainConfig.lr:g}, {TrainConfig.lr_schedule} schedule)")
    p.add_argument("--seed", type=int, help=f"seed of initialisation, data order and noise (default {TrainConfig.seed})")
    p.add_argument("--device", help="auto (cuda if available; the default), cpu, cuda, cuda:N")
    p.add_argument("--grad-clip", type=float, help="clip the gradient norm to this value (0 = off; train.grad_clip)")
    p.add_argument("--precision", choices=["fp32", "bf16"], help="bf16 autocast (for GPUs; train.precision)")
    p.add_argument("--config", help="YAML configuration file (sections data, model, loss, train)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. loss.beta=0.5 (repeatable)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--logger", metavar="NAMES",
                   help="loggers besides metrics.csv, comma-separated: tensorboard (RUN/tensorboard), mlflow (./mlruns)")


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
    cfg.override([f"data.options.{item}" for item in getattr(args, "data_option", [])])
    direct = {"anchors": ("model", "num_anchors"), "latent_dim": ("model", "latent_dim"), "epochs": ("train", "epochs"),
              "batch_size": ("train", "batch_size"), "lr": ("train", "lr"), "seed": ("train", "seed"), "device": ("train", "device"),
              "grad_clip": ("train", "grad_clip"), "precision": ("train", "precision")}
    for arg, (section, key) in direct.items():
        value = getattr(args, arg, None)
        if value is not None:
            setattr(getattr(cfg, section), key, value)
    if args.quiet:
        cfg.train.quiet = True
    if getattr(args, "logger", None):
        cfg.train.loggers = [n.strip() for n in args.logger.split(",") if n.strip()]
    if args.output:
        cfg.output = args.output
    cfg.override(args.set)
    return cfg
