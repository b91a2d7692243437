"""Run folders: train a configuration end to end, save everything, load it back.

Layout of a run folder::

    config.yaml          resolved configuration (enough to rerun)
    model.safetensors    weights, buffers and anchors (key ``anchors.anchors``)
    metrics.csv          a row per epoch with every loss term
    embeddings.npz       z (N,d) mu, assign (N,), anchors (m,d), y (N,), split (N,), rec (N,) per-sample
                         reconstruction loss, over every sample of the dataset
    run.json             dataset facts, architecture, environment, timings, status
    data_state.json      loader state needed to read new data the same way (e.g. a vocabulary)
    figures/             PNG figures drawn from the saved data
    checkpoints/         the last two training checkpoints (resume)
"""

from __future__ import annotations

import json
import os
import platform
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm.auto import tqdm

from nebula.config import Config
from nebula.data import load as load_data
from nebula.data.base import NebulaDataset
from nebula.errors import ConfigError, NebulaError
from nebula.latent.schedule import resolve_batch_size
from nebula.methods import METHODS, DataShapes, run_config
from nebula.train import checkpoint as ckpt
from nebula.train import distributed
from nebula.train.callbacks import Callback
from nebula.train.loggers import build_loggers
from nebula.train.trainer import Trainer, TrainingInterrupted, resolve_device

FINISHED = "complete"


@dataclass
class Run:
    """A trained (or loaded) run: its configuration, model and, when trained here, data and history."""

    config: Config
    model: torch.nn.Module
    run_dir: Path | None = None
    dataset: NebulaDataset | None = None
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    @torch.no_grad()
    def embed(self, x: torch.Tensor | np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """mu (N, d) float32 for model inputs ``x``: a tensor or numpy array (N, *input_shape) as the
        run's loader produces them (images in [0, 1]; uint8 images are divided by 255; (N, H, W) gets
        its channel axis). A wrong shape is a NebulaError naming the expected one."""
        x = self._as_inputs(x)
        device = next(self.model.parameters()).device
        self.model.eval()
        out = [self.model.embed(x[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)]
        return torch.cat(out).numpy() if out else np.zeros((0, self.config.model.latent_dim), np.float32)

    def _as_inputs(self, x: Any) -> torch.Tensor:
        """``x`` as a batch tensor of the run's input shape (see :meth:`embed`)."""
        modality = self.info.get("modality", "image")
        if not isinstance(x, torch.Tensor):
            arr = np.asarray(x)
            if arr.dtype == object or arr.dtype.kind not in "biuf":
                raise NebulaError(f"embed: expected a numeric array or tensor, found dtype {arr.dtype}")
            if modality == "image" and arr.dtype == np.uint8:
                arr = arr.astype(np.float32) / 255.0
            x = torch.from_numpy(np.ascontiguousarray(arr))
        if x.is_floating_point() and x.dtype != torch.float32:
            x = x.float()
        expected = tuple(self.info.get("input_shape") or ())
        if not expected:
            return x
        if modality == "image" and expected[0] == 1 and tuple(x.shape[1:]) == expected[1:]:
            x = x[:, None]  # (N, H, W) -> (N, 1, H, W)
        got = tuple(x.shape[1:])
        strict = modality in ("image", "voxels")
        fits = got == expected if strict else (len(got) == len(expected) and got[-1:] == expected[-1:])
        if not fits:
            hint = " (one sample? add the batch axis: x[None])" if tuple(x.shape) in (expected, expected[1:]) else ""
            raise NebulaError(f"embed: inputs of shape {tuple(x.shape)}, expected (N, {', '.join(map(str, expected))}) "
                              f"like the run's training data{hint}")
        return x

    def load_data(self, source: str | Path, **options: Any) -> NebulaDataset:
        """Read new data the way this run's training data was read (same modality and loader state)."""
        state = self.info.get("data_state") or {}
        opts = {**self.config.data.options, **options}
        if state:
            opts["state"] = state
        return load_data(source, modality=self.info.get("modality", "auto"), test_fraction=self.config.data.test_fraction,
                         split_seed=self.config.data.split_seed, options=opts)


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed python, numpy and torch (all devices); ``deterministic`` also asks PyTorch for deterministic
    kernels (cuDNN autotuning off, cuBLAS workspace fixed), so a seed and a config give identical results."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        torch.use_deterministic_algorithms(True, warn_only=True)


def build_model(cfg: Config, shapes: DataShapes | NebulaDataset) -> torch.nn.Module:
    """The model a configuration asks for, shaped for ``shapes`` (or a dataset's shapes)."""
    spec = METHODS.lookup(cfg.method)
    return spec.build(cfg, shapes if isinstance(shapes, DataShapes) else DataShapes.of(shapes))


def run_label(cfg: Config) -> str:
    """The run's name in run.json, eval.json and reports: NVC's variant (ae ... nvc-ml), else the method."""
    return METHODS.lookup(cfg.method).run_label(cfg)


def check_anchor_count(cfg: Config, train_samples: int) -> None:
    """Refuse more anchors than training samples: each anchor is placed on a cluster of training latents
    (k-means or a t-SNE partition), so m > N_train leaves anchors that can never own a sample."""
    if cfg.method == "nvc" and cfg.model.use_anchors and cfg.model.num_anchors > train_samples:
        raise ConfigError(f"model.num_anchors is {cfg.model.num_anchors} but the train split has {train_samples} "
                          f"samples (expected at most {train_samples} anchors: use --anchors {train_samples} or fewer)")


def load_dataset(cfg: Config) -> NebulaDataset:
    d = cfg.data
    return load_data(d.source, modality=d.modality, test_fraction=d.test_fraction, split_seed=d.split_seed, options=d.options)


@torch.no_grad()
def compute_embeddings(model: torch.nn.Module, dataset: NebulaDataset, device: torch.device, batch_size: int = 512) -> dict[str, np.ndarray]:
    """Per-sample outputs of ``model.embedding_batch`` (z, assign, rec, ...) for every sample, plus
    anchors (m, d), y (N,) (-1 when unlabelled) and split (N,), as numpy arrays (eval mode)."""
    model.eval()
    n = len(dataset)
    target = dataset.target if dataset.target is not None else dataset.x
    parts: dict[str, list[torch.Tensor]] = {}
    for i in range(0, n, batch_size):
        out = model.embedding_batch(dataset.x[i : i + batch_size].to(device), target[i : i + batch_size].to(device))
        for k, v in out.items():
            parts.setdefault(k, []).append(v.detach().cpu())
    emb = {k: torch.cat(v).numpy() for k, v in parts.items()}
    emb["z"] = emb["z"].astype(np.float32)
    emb["assign"] = emb.get("assign", np.full(n, -1)).astype(np.int64)
    anchors = model.anchor_array() if hasattr(model, "anchor_array") else None
    emb["anchors"] = anchors.float().cpu().numpy() if anchors is not None else np.zeros((0, emb["z"].shape[1]), np.float32)
    emb["y"] = dataset.y.astype(np.int64) if dataset.y is not None else np.full(n, -1, np.int64)
    emb["split"] = dataset.split.astype(np.int8)
    if "rec" in emb:
        emb["rec"] = emb["rec"].astype(np.float32)
    return emb


def save_embeddings(path: Path, emb: dict[str, np.ndarray]) -> None:
    """Write ``emb`` to ``path`` atomically (no temporary file is left behind on failure)."""
    from nebula.files import write_npz

    write_npz(path, emb)


def _environment(device: torch.device) -> dict[str, Any]:
    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "platform": platform.platform(), "device": str(device), "threads": torch.get_num_threads()}


def check_run_dir(run_dir: Path, overwrite: bool, resume: bool) -> None:
    """Raise unless ``run_dir`` may be written: not a file, and (unless ``overwrite`` or ``resume``) neither a
    finished run nor an unfinished one with checkpoints that ``--resume`` could continue."""
    info_path = run_dir / "run.json"
    if run_dir.exists() and not run_dir.is_dir():
        raise NebulaError(f"{run_dir}: exists and is not a folder (expected a run folder)")
    from nebula.files import check_writable_folder

    check_writable_folder(run_dir)  # below a regular file, or read-only: refused before any work
    if info_path.exists() and not resume:
        try:
            status = json.loads(info_path.read_text()).get("status")
        except (OSError, json.JSONDecodeError, AttributeError):
            status = None
        if status == FINISHED and not overwrite:
            raise NebulaError(f"{run_dir}: already holds a finished run (use --overwrite to replace it, or another -o)")
    if not resume and not overwrite and ckpt.list_checkpoints(run_dir):
        raise NebulaError(f"{run_dir}: holds an unfinished run with checkpoints (continue it with --resume {run_dir}, "
                          "replace it with --overwrite, or use another -o)")


def prepare_run_dir(run_dir: Path, overwrite: bool, resume: bool) -> None:
    """Refuse to write over a finished run unless ``overwrite``; clear an old run's outputs; create the folder."""
    check_run_dir(run_dir, overwrite, resume)
    if run_dir.exists() and not resume:
        import shutil

        # a new run never inherits checkpoints or metrics of an older one in the same folder
        for name in ("checkpoints", "figures"):
            shutil.rmtree(run_dir / name, ignore_errors=True)
        for name in ("metrics.csv", "embeddings.npz", "model.safetensors", "run.json", "eval.json"):
            (run_dir / name).unlink(missing_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)


def train(config: Config | dict | str | Path | None = None, *, resume: bool = False, overwrite: bool = False,
          dataset: NebulaDataset | None = None, figures: bool | None = None,
          callbacks: list[Callback] | None = None, resume_overrides: dict[str, Any] | None = None) -> Run:
    """Train a configuration end to end and, when ``config.output`` is set, write its run folder.

    Args:
        config: a :class:`Config`, a dict of sections, or a YAML path.
        resume: continue from the newest checkpoint in ``config.output`` with the saved configuration.
        overwrite: replace a finished run in ``config.output``.
        dataset: use this dataset instead of loading ``config.data``.
        figures: override ``config.train.figures``.
        callbacks: your own :class:`~nebula.train.callbacks.Callback` objects, called after the method's and
            the loggers.
        resume_overrides: with ``resume``, ``section.key`` -> value changes to the saved configuration;
            only the safe ones of :mod:`nebula.resume` (e.g. ``train.epochs``, which extends a finished run).
    """
    if isinstance(config, (str, Path)):
        cfg = Config.from_yaml(config)
    elif isinstance(config, dict):
        cfg = Config.from_dict(config)
    else:
        cfg = config or Config()
    run_dir = Path(cfg.output) if cfg.output else None
    if resume:
        if run_dir is None:
            raise ConfigError("resume needs a run folder (-o / output)")
        if overwrite:
            raise ConfigError("give either --resume (continue the run) or --overwrite (replace it), not both")
        from nebula.resume import resume_config

        cfg = resume_config(run_dir, resume_overrides)
    cfg.validate()
    if run_dir is not None:
        check_run_dir(run_dir, overwrite, resume)
    ctx, device = distributed.setup(resolve_device(cfg.train.device))
    try:
        return _train(cfg, run_dir, ctx, device, resume, overwrite, dataset, figures, callbacks)
    finally:
        distributed.teardown(ctx)


def _train(cfg: Config, run_dir: Path | None, ctx: distributed.DistContext, device: torch.device, resume: bool,
           overwrite: bool, dataset: NebulaDataset | None, figures: bool | None,
           callbacks: list[Callback] | None = None) -> Run:
    """The body of :func:`train` once the process group (if any) is set up; only rank 0 writes."""
    seed_everything(cfg.train.seed, cfg.train.deterministic)
    t0 = time.perf_counter()
    ds = dataset if dataset is not None else load_dataset(cfg)
    if cfg.loss.supervised and ds.y is None:
        raise ConfigError(f"loss.supervised needs labels, but {cfg.data.source} has none")
    n_train = int((np.asarray(ds.split) == 0).sum())
    check_anchor_count(cfg, n_train)
    if not resume:  # small sets: a batch that still makes train.min_steps steps (saved in config.yaml)
        cfg.train.batch_size = resolve_batch_size(cfg.train.batch_size, n_train, cfg.train.epochs, cfg.train.min_steps)
    model = build_model(cfg, ds)
    build_loggers(cfg.train.loggers, run_dir)  # an unknown or missing logger is refused before anything is written
    writes = run_dir is not None and ctx.is_main
    # the folder is created only once data and model are known to be good: bad input leaves nothing behind
    if writes:
        prepare_run_dir(run_dir, overwrite, resume)
        if not resume:
            ckpt.atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(run_config(cfg), sort_keys=False))
    info: dict[str, Any] = {
        "status": "running", "variant": run_label(cfg), "method": cfg.method, "modality": ds.modality,
        "dataset": {k: v for k, v in ds.meta.items() if k != "state" and _jsonable(v)},
        "num_samples": len(ds), "input_shape": list(ds.input_shape), "target_shape": list(ds.target_shape),
        "num_classes": ds.num_classes, "architecture": getattr(model, "architecture", {}),
        "parameters": sum(p.numel() for p in model.parameters()), "environment": _environment(device),
        "data_state": ds.meta.get("state") or {},
    }
    if ctx.world_size > 1:
        info["distributed"] = {"world_size": ctx.world_size, "backend": ctx.backend}
    trainer = Trainer(model, ds, cfg, run_dir, dist_ctx=ctx, device=device, callbacks=callbacks)
    if resume:  # before run.json is rewritten: a resume that cannot continue leaves the folder as it was
        trainer.resume()
        if writes:  # the safe changes of this session (more epochs) become part of the run's configuration
            ckpt.atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    if writes:
        ckpt.atomic_write_text(run_dir / "run.json", json.dumps(info, indent=2))
    distributed.barrier()
    t_train = time.perf_counter()
    try:
        trainer.fit()
    except (NebulaError, KeyboardInterrupt) as exc:
        if writes:  # the folder must not look complete; say why it stopped
            info["status"] = "interrupted" if isinstance(exc, (TrainingInterrupted, KeyboardInterrupt)) else "failed"
            info["error"] = str(exc) or type(exc).__name__
            ckpt.atomic_write_text(run_dir / "run.json", json.dumps(info, indent=2))
        raise
    # over every session of a resumed run; this process's share separately
    info["session_train_seconds"] = time.perf_counter() - t_train
    info["train_seconds"] = trainer.resumed_seconds + info["session_train_seconds"]
    info["messages"] = list(trainer.history.messages)  # e.g. where the anchors were placed, why training stopped
    if not ctx.is_main:
        return Run(config=cfg, model=model, run_dir=run_dir, dataset=ds, info=info)
    emb = compute_embeddings(model, ds, trainer.device)
    run = Run(config=cfg, model=model, run_dir=run_dir, dataset=ds, embeddings=emb, info=info)
    if writes:
        ckpt.save_weights(model, run_dir / "model.safetensors", metadata={"variant": info["variant"], "method": cfg.method})
        save_embeddings(run_dir / "embeddings.npz", emb)
        if cfg.train.figures if figures is None else figures:
            from nebula.evaluate.plots import run_figures

            for _ in tqdm([0], desc="figures", disable=cfg.train.quiet, leave=False):
                paths = run_figures(run)
            for logger in trainer.callbacks:
                if hasattr(logger, "log_figures"):
                    logger.log_figures(paths)
        info["status"] = FINISHED
        info["total_seconds"] = time.perf_counter() - t0
        ckpt.atomic_write_text(run_dir / "run.json", json.dumps(info, indent=2))
    return run


def load(run_dir: str | Path, device: str = "cpu") -> Run:
    """Load a finished run folder: configuration and weights (model in eval mode)."""
    run_dir = Path(run_dir)
    for name in ("config.yaml", "model.safetensors", "run.json"):
        if not (run_dir / name).exists():
            raise NebulaError(f"{run_dir}: not a finished nebula run (missing {name})")
    cfg = Config.from_yaml(run_dir / "config.yaml")
    try:
        info = json.loads((run_dir / "run.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise NebulaError(f"{run_dir / 'run.json'}: unreadable ({exc})") from None
    if not isinstance(info, dict) or info.get("status") != FINISHED:
        found = info.get("status") if isinstance(info, dict) else type(info).__name__
        raise NebulaError(f"{run_dir}: not a finished nebula run (run.json status {found!r}, expected {FINISHED!r})")
    meta = {"modality": info["modality"], **({"state": info["data_state"]} if info.get("data_state") else {})}
    shapes = DataShapes(tuple(info["input_shape"]), tuple(info["target_shape"]), info["modality"], meta=meta)
    built = info.get("architecture") or {}  # the encoder the run trained (auto's choice may change)
    if cfg.method == "nvc" and cfg.model.arch == "auto" and built.get("encoder"):
        cfg.model.arch = built["encoder"]
        if cfg.model.decoder == "auto":
            cfg.model.decoder = built.get("decoder", "auto")
    model = build_model(cfg, shapes)
    ckpt.load_weights(model, run_dir / "model.safetensors")
    model.to(resolve_device(device)).eval()
    emb = {}
    if (run_dir / "embeddings.npz").exists():
        from nebula.files import read_npz

        emb = read_npz(run_dir / "embeddings.npz")
    return Run(config=cfg, model=model, run_dir=run_dir, embeddings=emb, info=info)


def _jsonable(v: Any) -> bool:
    try:
        json.dumps(v)
        return True
    except TypeError:
        return False
