"""What a resumed run may change: ``nebula train --resume RUN`` with other options.

A resume continues the saved configuration (``RUN/config.yaml``). Options that leave the data order,
the model and the objective of the run as they were are *safe* and applied: more epochs (a finished
run is extended; the cosine schedule is then re-planned over the new total, from the step reached),
the device, progress display, figures and the checkpoint interval. Any other option that differs
from the saved value would train a different run from the same weights and is refused with the key,
both values and what to do instead; an option equal to the saved value is accepted.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from nebula.config import Config
from nebula.errors import ConfigError

#: configuration keys a resume may change
SAFE_ON_RESUME: tuple[str, ...] = ("train.epochs", "train.device", "train.quiet", "train.figures", "train.tsne",
                                   "train.checkpoint_every", "train.checkpoint_seconds")


def get_key(cfg: Config, key: str) -> Any:
    """The value of ``section.key`` (or ``output`` / ``method``) in ``cfg``."""
    obj: Any = cfg
    for part in key.split("."):
        obj = obj[part] if isinstance(obj, dict) else getattr(obj, part)
    return obj


def resume_config(run_dir: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    """The saved configuration of ``run_dir`` with the safe ``overrides`` (``section.key`` -> value) applied.

    Raises:
        ConfigError: an override of a key outside :data:`SAFE_ON_RESUME` whose value differs from the saved one.
    """
    run_dir = Path(run_dir)
    saved_path = run_dir / "config.yaml"
    if not saved_path.exists():
        from nebula.errors import NebulaError

        raise NebulaError(f"{run_dir}: nothing to resume (no config.yaml; is it a nebula run folder?)")
    cfg = Config.from_yaml(saved_path)
    for key, value in (overrides or {}).items():
        probe = copy.deepcopy(cfg)
        if key.startswith(("data.options.", "model.options.")):
            section, _, name = key.split(".", 2)
            getattr(probe, section).options[name] = value
            new, old = value, getattr(cfg, section).options.get(name)
        else:
            probe.set(key, value)  # validates the key and coerces the value
            new, old = get_key(probe, key), get_key(cfg, key)
        if new == old or (key == "data.source" and _same_path(new, old)):
            continue
        if key not in SAFE_ON_RESUME:
            raise ConfigError(f"--resume cannot change {key} (the run has {old!r}, given {new!r}): it would train a "
                              f"different run from these weights; start a new run with another -o instead "
                              f"(safe on resume: {', '.join(k.split('.', 1)[1] for k in SAFE_ON_RESUME)})")
        cfg = probe
    cfg.output = str(run_dir)
    return cfg


def overrides_from_args(args: Any) -> dict[str, Any]:
    """The ``section.key`` -> value changes that the options of ``nebula train --resume RUN ...`` ask for.

    Options without a configuration key are refused when given: ``--config`` (the run's own config.yaml
    is used) and an ``-o`` naming another folder. Everything else is checked by :func:`resume_config`.
    """
    import yaml

    from nebula.config import VARIANTS

    if getattr(args, "config", None):
        raise ConfigError(f"--config cannot be combined with --resume: the run's own {Path(args.resume) / 'config.yaml'} "
                          "is used (change safe options such as --epochs directly)")
    if getattr(args, "output", None) and Path(args.output).resolve() != Path(args.resume).resolve():
        raise ConfigError(f"-o {args.output} differs from --resume {args.resume}: a resumed run stays in its folder")
    out: dict[str, Any] = {}
    direct = {"epochs": "train.epochs", "device": "train.device", "batch_size": "train.batch_size", "lr": "train.lr",
              "seed": "train.seed", "grad_clip": "train.grad_clip", "precision": "train.precision",
              "anchors": "model.num_anchors", "latent_dim": "model.latent_dim", "modality": "data.modality"}
    for arg, key in direct.items():
        if getattr(args, arg, None) is not None:
            out[key] = getattr(args, arg)
    if getattr(args, "data", None):
        out["data.source"] = args.data
    out["train.quiet"] = bool(getattr(args, "quiet", False))  # this session's display, not the saved one's
    if getattr(args, "fire", False) or getattr(args, "conv", False):
        out["model.arch"] = "fire" if args.fire else "conv"
    if getattr(args, "variant", None):
        if args.variant not in VARIANTS:
            raise ConfigError(f"unknown variant '{args.variant}'; choose from {', '.join(VARIANTS)}")
        variational, anchors, order = VARIANTS[args.variant]
        out.update({"model.variational": variational, "model.use_anchors": anchors, "loss.metric_order": order})
    elif getattr(args, "variational", False) or getattr(args, "anchors_on", False) or getattr(args, "order", None) is not None:
        out.update({"model.variational": bool(args.variational), "model.use_anchors": bool(args.anchors_on),
                    "loss.metric_order": args.order or 0})
    if getattr(args, "task", None):
        out["data.options.task"] = args.task
    for item in [f"data.options.{o}" for o in getattr(args, "data_option", [])] + list(getattr(args, "set", [])):
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. train.epochs=50")
        key, raw = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(raw) if raw else raw
    return out


def _same_path(a: Any, b: Any) -> bool:
    try:
        return Path(str(a)).expanduser().resolve() == Path(str(b)).expanduser().resolve()
    except OSError:
        return False
