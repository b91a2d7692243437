"""scikit-learn estimator: ``NebulaEmbedding().fit(X).transform(X)``.

Every hyper-parameter is an ``__init__`` keyword; ``fit`` returns self; fitted attributes end in ``_``.
2-D input (n_samples, n_features) is standardised and reconstructed with MSE; image arrays
(N, H, W) or (N, C, H, W) are scaled to [0, 1] and reconstructed with BCE.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from nebula.config import Config, LossConfig, ModelConfig, TrainConfig
from nebula.data.base import NebulaDataset, to_unit_range


class NebulaEmbedding(TransformerMixin, ClusterMixin, BaseEstimator):
    """Nebula Variational Coding as a scikit-learn transformer and clusterer.

    The defaults are the library's (:mod:`nebula.config`, the same as ``nebula train``) with three
    differences, each for a reason: ``device="cpu"`` (an estimator computes where its numpy input lives;
    pass ``device="auto"`` for a GPU), no figures and no run folder (``fit`` writes no files), and
    non-deterministic kernels allowed (the CLI's default too; results still depend only on the seed on CPU).
    Tabular input is reconstructed with MSE on standardised features instead of BCE on pixels.

    Parameters:
        variant: ae, vae, tae, tvae or nvc-ml.
        n_anchors: number of anchors m (also the number of clusters for ``predict``).
        latent_dim: latent dimension d.
        arch: encoder family (``auto``: conv for image arrays from 16x16, else MLP; ``conv``/``fire`` ask for them).
        epochs, batch_size, lr: optimisation budget.
        beta, anchor_weight, metric_weight: loss weights (see :class:`~nebula.config.LossConfig`).
        pretrain_epochs: epochs of plain (V)AE training before the anchors are placed.
        device: ``cpu``, ``cuda`` or ``auto``.
        random_state: seed (int) or None (seed 0).
        verbose: show progress bars.
        config: extra ``section.key: value`` overrides applied last.

    Attributes:
        labels_: (n_samples,) nearest anchor of each training sample (k-means on the latents for
            variants without anchors).
        anchors_: (m, d) anchors (k-means centres without anchors).
        embedding_: (n_samples, d) latent means of the training samples.
        n_features_in_: number of features seen in ``fit``.
        run_: the underlying :class:`~nebula.run.Run`.
    """

    def __init__(self, variant: str = "tvae", n_anchors: int = ModelConfig.num_anchors,
                 latent_dim: int = ModelConfig.latent_dim, arch: str = ModelConfig.arch,
                 epochs: int = TrainConfig.epochs, batch_size: int = TrainConfig.batch_size, lr: float = TrainConfig.lr,
                 beta: float = LossConfig.beta, anchor_weight: float = LossConfig.anchor_weight,
                 metric_weight: float = LossConfig.metric_weight, pretrain_epochs: int = TrainConfig.pretrain_epochs,
                 device: str = "cpu", random_state: int | None = None, verbose: bool = False,
                 config: dict[str, Any] | None = None) -> None:
        self.variant = variant
        self.n_anchors = n_anchors
        self.latent_dim = latent_dim
        self.arch = arch
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.beta = beta
        self.anchor_weight = anchor_weight
        self.metric_weight = metric_weight
        self.pretrain_epochs = pretrain_epochs
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.config = config

    # ------------------------------------------------------------------ helpers
    def _config(self, tabular: bool) -> Config:
        cfg = Config().apply_variant(self.variant)
        cfg.model.num_anchors = int(self.n_anchors)
        cfg.model.latent_dim = int(self.latent_dim)
        cfg.model.arch = self.arch
        cfg.loss.reconstruction = "mse" if tabular else "bce"
        cfg.loss.beta = float(self.beta)
        cfg.loss.anchor_weight = float(self.anchor_weight)
        cfg.loss.metric_weight = float(self.metric_weight)
        cfg.train.epochs = int(self.epochs)
        cfg.train.batch_size = int(self.batch_size)
        cfg.train.lr = float(self.lr)
        cfg.train.pretrain_epochs = min(int(self.pretrain_epochs), max(int(self.epochs) - 1, 0))
        cfg.train.device = self.device
        cfg.train.seed = 0 if self.random_state is None else int(self.random_state)
        cfg.train.quiet = not self.verbose
        cfg.train.figures = False
        cfg.train.deterministic = False
        for key, value in (self.config or {}).items():
            cfg.set(key, value)
        return cfg.validate()

    def _inputs(self, X: Any, reset: bool) -> torch.Tensor:
        arr = np.asarray(X) if not hasattr(X, "shape") or getattr(X, "ndim", 2) > 2 else X
        if getattr(arr, "ndim", 2) > 2:  # image arrays
            arr = np.asarray(arr)
            if reset:
                self._tabular = False
                self.n_features_in_ = int(np.prod(arr.shape[1:]))
                self._image_shape = arr.shape[1:]
            elif getattr(self, "_tabular", True) or arr.shape[1:] != self._image_shape:
                raise ValueError(f"X has shape {arr.shape[1:]} per sample, expected {getattr(self, '_image_shape', None)}")
            pixels, _ = to_unit_range(arr, "X")
            x = torch.from_numpy(np.ascontiguousarray(pixels))
            return x[:, None] if x.ndim == 3 else x
        Xv = validate_data(self, X, reset=reset, dtype=np.float64, ensure_min_samples=1)
        if reset:
            self._tabular = True
            self.mean_ = Xv.mean(0)
            scale = Xv.std(0)
            self.scale_ = np.where(scale > 0, scale, 1.0)
        elif not getattr(self, "_tabular", False):
            raise ValueError("X is tabular but the estimator was fitted on images")
        return torch.from_numpy(((Xv - self.mean_) / self.scale_).astype(np.float32))

    # ------------------------------------------------------------------ API
    def fit(self, X: Any, y: Any = None) -> NebulaEmbedding:
        """Train on every sample of X (labels are ignored unless ``config`` sets loss.supervised)."""
        from nebula.run import train

        x = self._inputs(X, reset=True)
        n = len(x)
        if n < 2:
            raise ValueError(f"NebulaEmbedding needs at least 2 samples to train (batch norm), got n_samples={n}")
        if self.variant in ("tae", "tvae", "nvc-ml") and int(self.n_anchors) > n:
            raise ValueError(f"n_anchors={self.n_anchors} is more than the {n} samples (expected n_anchors <= n_samples: "
                             "each anchor is placed on a cluster of samples)")
        labels = None if y is None else np.asarray(y)
        if labels is not None and labels.dtype.kind not in "iu":
            labels = np.unique(labels, return_inverse=True)[1]
        ds = NebulaDataset(x=x, y=labels, split=np.zeros(n, np.int8), meta={"name": "array", "modality": "image"})
        cfg = self._config(self._tabular)
        cfg.train.batch_size = max(2, min(cfg.train.batch_size, n))
        self.run_ = train(cfg, dataset=ds)
        emb = self.run_.embeddings
        self.embedding_ = emb["z"]
        if len(emb["anchors"]):
            self.anchors_ = emb["anchors"]
            self.labels_ = emb["assign"]
        else:
            from sklearn.cluster import KMeans

            k = min(self.n_anchors, n)
            km = KMeans(n_clusters=k, n_init=10, random_state=cfg.train.seed).fit(self.embedding_)
            self.anchors_ = km.cluster_centers_.astype(np.float32)
            self.labels_ = km.labels_.astype(np.int64)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Latent means mu: (n_samples, latent_dim)."""
        check_is_fitted(self, "run_")
        return self.run_.embed(self._inputs(X, reset=False)).astype(np.float64)

    def predict(self, X: Any) -> np.ndarray:
        """Index of the nearest anchor (cluster) of each sample."""
        z = self.transform(X)
        d = ((z[:, None, :] - self.anchors_[None, :, :].astype(np.float64)) ** 2).sum(-1)
        return d.argmin(1).astype(np.int64)

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        return self.fit(X, y).labels_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags
