"""Run configuration: dataclasses, YAML round-trip, ``key=value`` overrides and the named variants.

A run is fully described by a :class:`Config`; ``config.yaml`` in a run folder is ``Config.to_dict()``
and ``Config.from_dict(yaml.safe_load(...))`` restores it exactly. Unknown keys are errors that suggest
the closest valid key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from nebula.contrastive.config import ContrastiveConfig
from nebula.errors import ConfigError, did_you_mean
from nebula.translation.config import TranslationConfig


@dataclass
class DataConfig:
    """Where the data comes from and how it is split.

    ``source`` is a registered dataset name (``digits``) or a path to a file/folder whose format is
    detected. ``options`` are passed to the loader (e.g. ``{"labels": "coarse"}`` for TREC).
    Datasets without an official split get a seeded stratified split with ``test_fraction`` held out.
    ``augment`` is the training-time input augmentation (None: the modality's default; {}: none).
    """

    source: str = "digits"
    modality: str = "auto"
    test_fraction: float = 0.2
    split_seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    augment: dict[str, Any] | None = None


@dataclass
class ModelConfig:
    """Encoder/decoder family, latent head and anchors.

    ``arch`` picks the encoder family (``auto`` = the modality's default: conv for images from 16x16 (``channels``
    [16, 32, 64]; voxels [32, 64, 128]), mlp for smaller images and tabular rows), ``decoder``
    the decoder family (``auto`` mirrors the encoder). ``feature_dim`` is the width of the layer that
    feeds the latent heads (the reference's "hidden"). ``num_anchors`` is m; anchors exist only when
    ``use_anchors`` is true (variants tae, tvae, nvc-ml).
    """

    arch: str = "auto"
    decoder: str = "auto"
    variational: bool = True
    use_anchors: bool = True
    num_anchors: int = 10
    latent_dim: int = 10
    hidden: list[int] = field(default_factory=lambda: [512, 256, 128])
    channels: list[int] = field(default_factory=lambda: [16, 32, 64])
    feature_dim: int = 64
    batch_norm: bool = True
    dropout: float = 0.0
    condition_decoder: bool = False
    condition_tau: float = 1.0
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class LossConfig:
    """Weights and forms of every NVC loss term (docs/methods.md section 1.8).

    L = mean(L_rec + beta KL) + anchor_weight * L_anchor + metric_weight * L_metric.
    ``anchor_input`` is the latent the anchor and metric terms see: ``mu`` (the posterior mean, what
    evaluation assigns) or ``z`` (the sample, as in the paper). ``view_consistency`` (with input
    augmentation) encodes the clean input too and labels both views with the clean view's nearest
    anchor, so the anchor and metric terms pull augmented latents to the clean latent's anchor.
    ``pseudo_labels``: ``nearest`` anchor, ``balanced`` (equipartitioned by Sinkhorn with temperature
    ``balance_epsilon`` times the mean distance), or ``partition``: the part of the placement's (and each
    refinement's) partition of the training set, the nearest anchor where a sample has none
    (:mod:`nebula.latent.refine`), until ``partition_until`` (a fraction of ``train.epochs``), then the nearest
    anchor; ``auto`` (default): ``partition`` when the anchors are placed by t-SNE, else ``nearest``.
    ``partition_weight`` replaces ``anchor_weight`` while a t-SNE map's partition labels the anchor terms (the
    pull then holds a partition better than the latent's own, against a reconstruction summed over every input
    feature; 0: keep ``anchor_weight``); ``partition_keep`` < 1 labels only each part's most central fraction
    (:func:`nebula.latent.placement.central_members`). ``prior``: ``standard`` N(0, I), or ``anchors``: the KL
    is taken to N(a_c, I) with c the nearest anchor. ``neighbours`` k > 0 adds one of each sample's k
    nearest training samples (mined each epoch in the ``neighbour_space``, latent or input) as a further
    view labelled by the sample's pseudo-label. These three are off by default (docs/clustering.md).
    ``reseed_dead``: an anchor that owned no latent for ``dead_after_epochs`` epochs' worth of steps is
    moved to split the most crowded anchor's part (:meth:`nebula.latent.anchors.NebulaAnchors.update_usage`).
    """

    reconstruction: str = "auto"
    beta: float = 0.1
    kl_warmup_epochs: int = 0
    free_bits: float = 0.0
    anchor_loss: str = "nearest"
    anchor_weight: float = 1.0
    repulsion_weight: float = 1.0
    repulsion_distance: float = 4.0
    metric_order: int = 0
    metric_form: str = "ratio"
    metric_weight: float = 0.1
    metric_margin: float = 1.0
    hinge_margin: float = 1.0
    supervised: bool = False
    anchor_input: str = "mu"
    view_consistency: bool = True
    pseudo_labels: str = "auto"
    prior: str = "standard"
    neighbours: int = 0
    neighbour_space: str = "latent"
    balance_epsilon: float = 0.05
    partition_until: float = 1.0
    partition_keep: float = 1.0
    partition_weight: float = 16.0
    reseed_dead: bool = True
    dead_after_epochs: float = 2.0


@dataclass
class TrainConfig:
    """Optimisation, schedule, device and output options.

    ``pretrain_epochs`` epochs train without the anchor terms (-1, the default: half of ``epochs``; a value
    >= ``epochs`` is shortened to ``epochs - 1``, saying so, so that every run places its anchors
    (:mod:`nebula.latent.schedule`)); then the anchors are placed by
    ``anchor_init``: ``kmeans`` on the training latents, ``random`` training latents, ``tsne`` (latent
    means of a k-means partition of a t-SNE map of the training inputs) or ``auto`` (the modality's
    choice: tsne for images and tabular data, kmeans otherwise); see :mod:`nebula.latent.placement`.
    ``placement_map`` is the map ``tsne`` partitions: ``input``, ``latent`` (the warmed-up latents) or ``auto``
    (the inputs', and from 1,000 training samples on the better separated of the two by silhouette);
    ``placement_cut`` how that map is cut into parts: ``kmeans``, ``ward`` (Ward linkage) or ``auto`` (Ward where its worst
    part is better separated than k-means': it keeps a large class whole where k-means splits it).
    ``loggers``: besides metrics.csv, ``tensorboard`` and/or ``mlflow`` (:mod:`nebula.train.loggers`).
    ``eval_every`` > 0 evaluates on the test split every that many epochs (reconstruction loss; with labels
    kNN accuracy and, with anchors, nearest-anchor ACC; :mod:`nebula.train.periodic`); ``early_stop_metric``
    (one of those names) stops training after ``early_stop_patience`` evaluations without improvement.
    ``refine`` times, evenly spread over the rest of the run, the anchors are re-placed on a k-means partition of a t-SNE
    map of the training *latents*, its parts matched to the current ones (:mod:`nebula.latent.refine`).
    ``min_steps`` > 0 (default 1000) shrinks ``batch_size`` (not below 32) so that the run makes at least
    that many optimiser steps (small data sets; :func:`nebula.latent.schedule.resolve_batch_size`); 0 keeps it.
    """

    epochs: int = 100
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 0.0
    lr_schedule: str = "cosine"
    pretrain_epochs: int = -1
    anchor_init: str = "auto"
    placement_map: str = "auto"
    placement_cut: str = "auto"
    seed: int = 0
    device: str = "auto"
    grad_clip: float = 0.0
    precision: str = "fp32"
    deterministic: bool = False
    checkpoint_every: int = 1
    checkpoint_seconds: float = 30.0
    quiet: bool = False
    figures: bool = True
    tsne: bool = False
    loggers: list[str] = field(default_factory=list)
    eval_every: int = 0
    early_stop_metric: str = ""
    early_stop_patience: int = 5
    refine: int = 0
    min_steps: int = 1000


@dataclass
class Config:
    """Everything needed to reproduce a run. ``method`` picks the registered method
    (:mod:`nebula.methods`; ``nvc`` = :class:`~nebula.nvc.model.NebulaCoder`); a run folder's config.yaml
    holds only the chosen method's own sections (``model`` and ``loss`` for NVC, ``contrastive``)."""

    method: str = "nvc"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    contrastive: ContrastiveConfig = field(default_factory=ContrastiveConfig)
    translation: TranslationConfig = field(default_factory=TranslationConfig)
    output: str | None = None

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """Every section as plain data (:func:`nebula.methods.run_config` leaves out other methods' sections)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Config:
        return _build(cls, data or {}, prefix="")

    def to_yaml(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def from_yaml(cls, path: str | Path) -> Config:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not a UTF-8 text file (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({(str(exc).splitlines() or [''])[0]})") from None
        if data is not None and not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping of sections, found {type(data).__name__}")
        return cls.from_dict(data)

    # ------------------------------------------------------------------ overrides and variants
    def override(self, assignments: list[str]) -> Config:
        """Apply ``section.key=value`` strings (value parsed as YAML) and return self."""
        for item in assignments:
            if "=" not in item:
                raise ConfigError(f"--set {item!r}: expected key=value, e.g. train.lr=1e-3")
            key, raw = item.split("=", 1)
            try:
                value = yaml.safe_load(raw) if raw != "" else ""
            except yaml.YAMLError:
                value = raw
            self.set(key.strip(), value)
        return self

    def set(self, key: str, value: Any) -> None:
        """Set ``section.key`` (or ``output`` / ``method``) to ``value``; ``data.options.NAME`` and
        ``model.options.NAME`` set one entry of those mappings."""
        if key.startswith(("data.options.", "model.options.")):
            section, _, name = key.split(".", 2)
            getattr(self, section).options[name] = value
            return
        parts = key.split(".")
        if len(parts) == 1 and parts[0] in ("output", "method"):
            setattr(self, parts[0], None if value is None else str(value))
            return
        if len(parts) != 2:
            raise ConfigError(f"unknown config key {key!r}: use section.key, sections {_sections()}")
        section, name = parts
        if section not in _sections():
            raise ConfigError(f"unknown config section {section!r}{did_you_mean(section, _sections())}")
        obj = getattr(self, section)
        names = [f.name for f in dataclasses.fields(obj)]
        if name not in names:
            valid = [f"{section}.{n}" for n in names]
            raise ConfigError(f"unknown config key {key!r}{did_you_mean(key, valid)}")
        setattr(obj, name, _coerce(get_type_hints(type(obj))[name], value, key))

    @property
    def variant(self) -> str:
        """Name of the NVC reference variant these flags make (``custom`` otherwise)."""
        m, lc = self.model, self.loss
        if not m.use_anchors:
            return "vae" if m.variational else "ae"
        if lc.metric_order != 0:
            return "nvc-ml" if m.variational and lc.metric_order == -1 else "custom"
        return "tvae" if m.variational else "tae"

    def apply_variant(self, name: str) -> Config:
        """Set the flags of a reference variant (docs/methods.md section 1.9): ae, vae, tae, tvae, nvc-ml."""
        if name not in VARIANTS:
            raise ConfigError(f"unknown variant '{name}'{did_you_mean(name, VARIANTS)}; choose from {', '.join(VARIANTS)}")
        variational, anchors, order = VARIANTS[name]
        self.model.variational = variational
        self.model.use_anchors = anchors
        self.loss.metric_order = order
        return self

    def validate(self) -> Config:
        """Raise :class:`ConfigError` on values that cannot work."""
        t, m, lc = self.train, self.model, self.loss
        checks = [
            (t.lr > 0, f"train.lr must be > 0, found {t.lr}"),
            (t.epochs >= 1, f"train.epochs must be >= 1, found {t.epochs}"),
            (t.batch_size >= 1, f"train.batch_size must be >= 1, found {t.batch_size}"),
            (not m.use_anchors or m.num_anchors >= 1, f"model.num_anchors must be >= 1, found {m.num_anchors}"),
            (m.latent_dim >= 1, f"model.latent_dim must be >= 1, found {m.latent_dim}"),
            (lc.metric_order == 0 or t.batch_size >= 2,
             f"train.batch_size must be >= 2 with metric learning, found {t.batch_size}"),
            (lc.metric_order in (0, 1, 2, 3, -1), f"loss.metric_order must be one of 0,1,2,3,-1, found {lc.metric_order}"),
            _one_of("loss.metric_form", lc.metric_form, ("ratio", "hinge")),
            _one_of("loss.anchor_loss", lc.anchor_loss, ("nearest", "nebula", "both")),
            _one_of("loss.anchor_input", lc.anchor_input, ("mu", "z")),
            _one_of("loss.pseudo_labels", lc.pseudo_labels, ("auto", "nearest", "balanced", "partition")),
            (t.refine >= 0, f"train.refine must be >= 0, found {t.refine}"),
            (t.min_steps >= 0, f"train.min_steps must be >= 0, found {t.min_steps}"),
            _one_of("loss.prior", lc.prior, ("standard", "anchors")),
            (lc.neighbours >= 0, f"loss.neighbours must be >= 0, found {lc.neighbours}"),
            _one_of("loss.neighbour_space", lc.neighbour_space, ("latent", "input")),
            (lc.balance_epsilon > 0, f"loss.balance_epsilon must be > 0, found {lc.balance_epsilon}"),
            (lc.partition_weight >= 0, f"loss.partition_weight must be >= 0, found {lc.partition_weight}"),
            (0.0 < lc.partition_keep <= 1.0, f"loss.partition_keep must be in (0, 1], found {lc.partition_keep}"),
            (0.0 <= lc.partition_until <= 1.0, f"loss.partition_until must be in [0, 1], found {lc.partition_until}"),
            (lc.beta >= 0, f"loss.beta must be >= 0, found {lc.beta}"),
            (0.0 < self.data.test_fraction < 1.0, f"data.test_fraction must be in (0, 1), found {self.data.test_fraction}"),
            (0.0 <= m.dropout < 1.0, f"model.dropout must be in [0, 1), found {m.dropout}"),
            _one_of("train.placement_map", t.placement_map, PLACEMENT_MAPS),
            _one_of("train.placement_cut", t.placement_cut, PLACEMENT_CUTS),
            _one_of("train.anchor_init", t.anchor_init, ANCHOR_INITS),
            _one_of("train.lr_schedule", t.lr_schedule, ("cosine", "constant")),
            (t.pretrain_epochs >= -1, f"train.pretrain_epochs must be >= 0 or -1 (auto), found {t.pretrain_epochs}"),
            (lc.dead_after_epochs > 0, f"loss.dead_after_epochs must be > 0, found {lc.dead_after_epochs}"),
            (t.grad_clip >= 0, f"train.grad_clip must be >= 0 (0 = off), found {t.grad_clip}"),
            _one_of("train.precision", t.precision, ("fp32", "bf16")),
            (t.checkpoint_every >= 1, f"train.checkpoint_every must be >= 1, found {t.checkpoint_every}"),
            (t.checkpoint_seconds >= 0, f"train.checkpoint_seconds must be >= 0 (0 = every checkpoint_every epochs), "
                                        f"found {t.checkpoint_seconds}"),
            (t.eval_every >= 0, f"train.eval_every must be >= 0 (0 = off), found {t.eval_every}"),
            (not t.early_stop_metric or t.eval_every > 0, "train.early_stop_metric needs train.eval_every > 0"),
            (t.early_stop_patience >= 1, f"train.early_stop_patience must be >= 1, found {t.early_stop_patience}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        return self


#: the maps ``train.placement_map`` names, the cuts ``train.placement_cut`` names, the ``train.anchor_init`` methods
PLACEMENT_MAPS = ("auto", "input", "latent")
PLACEMENT_CUTS = ("auto", "kmeans", "ward")
ANCHOR_INITS = ("auto", "kmeans", "random", "tsne")


def _one_of(name: str, value: str, choices: tuple[str, ...]) -> tuple[bool, str]:
    """A validation check: ``value`` is one of ``choices``, with the message naming them all."""
    listed = ", ".join(choices[:-1]) + f" or {choices[-1]}"
    return value in choices, f"{name} must be {listed}, found {value!r}"


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise :class:`ConfigError` with :meth:`Config.validate`'s message unless ``value`` is one of ``choices``
    (for code that takes a setting's value directly, e.g. :mod:`nebula.latent.placement`)."""
    ok, message = _one_of(name, value, choices)
    if not ok:
        raise ConfigError(message)


#: name -> (variational, anchors, metric order)
VARIANTS: dict[str, tuple[bool, bool, int]] = {
    "ae": (False, False, 0),
    "vae": (True, False, 0),
    "tae": (False, True, 0),
    "tvae": (True, True, 0),
    "nvc-ml": (True, True, -1),
}


def _sections() -> list[str]:
    return [f.name for f in dataclasses.fields(Config) if f.name not in ("output", "method")]


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"config section '{prefix.rstrip('.') or 'root'}': expected a mapping, found {type(data).__name__}")
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in names:
            valid = [prefix + n for n in names]
            raise ConfigError(f"unknown config key {prefix + str(key)!r}{did_you_mean(prefix + str(key), valid)}")
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value or {}, prefix=f"{key}.")
        else:
            kwargs[key] = _coerce(hint, value, prefix + key)
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, key: str) -> Any:
    """Check/convert ``value`` to the annotated type; ints are accepted for floats."""
    origin = getattr(hint, "__origin__", None)
    text = str(hint)
    if value is None:
        if "None" in text:
            return None
        raise ConfigError(f"config key '{key}' cannot be empty")
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key '{key}' expects true/false, found {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"config key '{key}' expects an integer, found {value!r}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"config key '{key}' expects a number, found {value!r}")
    if hint is str or text in ("str | None", "typing.Optional[str]"):
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"config key '{key}' expects a string, found {value!r}")
    if origin is list:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{key}' expects a list, found {value!r}")
        inner = hint.__args__[0]
        return [_coerce(inner, v, key) for v in value]
    if origin is dict or text.startswith("dict[") and "None" in text:
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}' expects a mapping, found {value!r}")
        return dict(value)
    return value
