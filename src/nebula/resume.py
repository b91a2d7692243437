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
                                   "train.checkpoint_every")


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
        if new == old:
            continue
        if key not in SAFE_ON_RESUME:
            raise ConfigError(f"--resume cannot change {key} (the run has {old!r}, given {new!r}): it would train a "
                              f"different run from these weights; start a new run with another -o instead "
                              f"(safe on resume: {', '.join(k.split('.', 1)[1] for k in SAFE_ON_RESUME)})")
        cfg = probe
    cfg.output = str(run_dir)
    return cfg
