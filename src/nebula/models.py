"""NebulaCoder: autoencoder / VAE with nebula anchors and pseudo-label metric learning (NVC).

Total loss (METHODS.md section 1, weights from :class:`~nebula.config.LossConfig`):

    L = mean_i(L_rec,i + beta_t KL_i) + lambda_c L_anchor + lambda_m L_metric

with beta_t the warmed-up KL weight, L_anchor = L_near, L_neb or L_near + w_rep L_neb, and L_metric
one of the -r orders on nearest-anchor pseudo-labels (true labels with ``loss.supervised``). The
anchor and metric terms start after ``train.pretrain_epochs`` epochs, when the trainer asks the model
to place its anchors (``train.anchor_init``: t-SNE of the inputs for images, k-means on the
latents, or random; :mod:`nebula.latent.placement`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from nebula.config import Config
from nebula.errors import ConfigError
from nebula.latent.anchors import NebulaAnchors, balanced_assignment, nebula_gravitation_loss
from nebula.latent.gaussian import (
    DeterministicHead,
    GaussianHead,
    free_bits_kl,
    kl_standard_normal,
    mean_kl_standard_normal,
    warmup_weight,
)
from nebula.latent.metric import PseudoLabelMetricLoss
from nebula.latent.placement import place_anchors
from nebula.losses import get_reconstruction
from nebula.modalities import build_augment, resolve_anchor_init, resolve_architecture
from nebula.nn import build_decoder, build_encoder


@dataclass
class StepInfo:
    """Where training is: passed to ``forward`` for warm-ups and schedules."""

    epoch: int = 0
    step: int = 0
    steps_per_epoch: int = 1


@dataclass
class ModelOutput:
    """Everything a forward pass produces.

    loss: scalar total; terms: unweighted scalar terms (for logging); z, mu: (N, d);
    output: decoder output (N, *target_shape); assign: (N,) nearest anchor or None.
    """

    loss: torch.Tensor
    terms: dict[str, torch.Tensor] = field(default_factory=dict)
    z: torch.Tensor | None = None
    mu: torch.Tensor | None = None
    output: torch.Tensor | None = None
    assign: torch.Tensor | None = None


#: method name -> builder(cfg, dataset) -> model; ``Config.method`` selects one
MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register ``builder(cfg, dataset) -> nn.Module`` under a method name (``nvc``, ``manifoldclr``, ...)."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        MODELS[name] = fn
        return fn

    return wrap


def identity_gather(t: torch.Tensor) -> torch.Tensor:
    return t


class NebulaCoder(nn.Module):
    """Encoder -> latent head -> (anchors, metric) -> decoder, for any registered modality.

    Args:
        cfg: the run configuration.
        input_shape: shape of one input sample, e.g. (1, 8, 8).
        target_shape: shape of one reconstruction target (differs for completion tasks).
        modality: registered modality name (image, points, voxels, text).
    """

    def __init__(self, cfg: Config, input_shape: tuple[int, ...], target_shape: tuple[int, ...], modality: str = "image") -> None:
        super().__init__()
        self.cfg = cfg
        m, lc = cfg.model, cfg.loss
        enc_name, dec_name, rec_name = resolve_architecture(modality, m.arch, m.decoder, lc.reconstruction)
        self.architecture = {"encoder": enc_name, "decoder": dec_name, "reconstruction": rec_name}
        self.anchor_init = resolve_anchor_init(modality, cfg.train.anchor_init)
        self.augment = build_augment(modality, cfg.data.augment, input_shape)
        self.encoder = build_encoder(enc_name, input_shape, m)
        head = GaussianHead if m.variational else DeterministicHead
        self.head = head(self.encoder.out_features, m.latent_dim)
        self.anchors = NebulaAnchors(m.num_anchors, m.latent_dim, lc.reseed_dead, lc.dead_after) if m.use_anchors else None
        self.condition = bool(m.condition_decoder and self.anchors is not None)
        dec_in = m.latent_dim + (m.num_anchors if self.condition else 0)
        self.decoder = build_decoder(dec_name, dec_in, target_shape, m, self.encoder)
        self.reconstruction = get_reconstruction(rec_name)
        self.metric = (PseudoLabelMetricLoss(lc.metric_order, lc.metric_form, lc.metric_margin, lc.hinge_margin)
                       if lc.metric_order != 0 else None)
        self.register_buffer("anchors_ready", torch.tensor(self.anchors is None or cfg.train.pretrain_epochs == 0))
        # replaced by an all-gather with gradient under DistributedDataParallel
        self.gather: Callable[[torch.Tensor], torch.Tensor] = identity_gather

    # ------------------------------------------------------------------ building blocks
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """x: (N, *input_shape) -> (z, mu, log_sigma), each (N, d) (log_sigma None for AE)."""
        return self.head(self.encoder(x))

    def decode(self, z: torch.Tensor, target: torch.Tensor | None = None, dist: torch.Tensor | None = None) -> torch.Tensor:
        """z: (N, d) -> decoder output (N, *target_shape); conditions on softmax(-D/tau) when enabled."""
        if self.condition:
            dist = self.anchors.distances(z) if dist is None else dist
            z = torch.cat([z, self.anchors.soft_assign(dist, self.cfg.model.condition_tau)], dim=1)
        return self.decoder(z, target)

    def to_data(self, output: torch.Tensor) -> torch.Tensor:
        """Decoder output -> data space (e.g. sigmoid of logits)."""
        return self.reconstruction.to_data(output)

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """mu: (N, d) for inputs x (call in eval mode)."""
        return self.encode(x)[1]

    @torch.no_grad()
    def embedding_batch(self, x: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """What the run folder stores per sample: z = mu (N, d), assign (N,) (-1 without anchors) and
        rec (N,), the per-sample reconstruction loss of decode(mu) (eval mode)."""
        _, mu, _ = self.encode(x)
        dist = self.anchors.distances(mu) if self.anchors is not None else None
        rec = self.reconstruction.loss(self.decode(mu, target, dist), target)
        assign = dist.argmin(1) if dist is not None else torch.full((len(mu),), -1, dtype=torch.long, device=mu.device)
        return {"z": mu, "assign": assign, "rec": rec}

    def anchor_array(self) -> torch.Tensor | None:
        """(m, d) anchors or None."""
        return self.anchors.anchors.detach() if self.anchors is not None else None

    # ------------------------------------------------------------------ loss
    def forward(self, batch: dict[str, torch.Tensor], info: StepInfo | None = None) -> ModelOutput:
        info = info or StepInfo()
        lc = self.cfg.loss
        x = batch["x"]
        target = batch.get("target", x)
        clean = x
        if self.training and self.augment is not None:
            x = self.augment(x)
        z, mu, log_sigma = self.encode(x)
        active = self.anchors is not None and bool(self.anchors_ready)
        dist = self.anchors.distances(z) if active and self.condition else None
        output = self.decode(z, target, dist)
        rec = self.reconstruction.loss(output, target)
        terms: dict[str, torch.Tensor] = {"rec": rec.mean()}
        total = terms["rec"]
        assign = None
        prior_mean = None
        if active:
            latent = mu if lc.anchor_input == "mu" else z
            views, mu_clean = 1, None
            if lc.view_consistency and clean is not x:
                # the clean view's pseudo-label labels both views: augmented latents are pulled to its anchor
                views = 2
                mu_clean = self.encode(clean)[1]
                clean_g = self.gather(mu_clean)
                zg = torch.cat([clean_g, self.gather(latent)])
            else:
                zg = self.gather(latent)
            if "x_nb" in batch:
                # a nearest training neighbour is one more view, labelled by the sample's pseudo-label
                x_nb = self.augment(batch["x_nb"]) if self.training and self.augment is not None else batch["x_nb"]
                zg = torch.cat([zg, self.gather(self.encode(x_nb)[1])])
                views += 1
            # the N x m distances give the labels; only the nebula term needs their graph (the pulls are
            # computed from the differences)
            with torch.set_grad_enabled(torch.is_grad_enabled() and lc.anchor_loss in ("nebula", "both")):
                dist_g = self.anchors.distances(zg)
            nearest = dist_g.detach().argmin(1)  # every view's own nearest anchor
            if lc.supervised:
                if "y" not in batch:
                    raise ValueError("loss.supervised needs labelled data")
                labels = self.gather(batch["y"]).repeat(views)
            elif lc.pseudo_labels == "balanced":
                labels = balanced_assignment(dist_g[: len(zg) // views], lc.balance_epsilon).repeat(views)
            else:  # the first (clean) view's nearest anchor labels every view
                labels = nearest[: len(zg) // views].repeat(views) if views > 1 else nearest
            assign = labels
            if lc.anchor_loss in ("nearest", "both"):
                # mean_i D_{i, c_i}: equal to mean_i min_k D_ik when c are the nearest-anchor labels
                terms["near"] = self.anchors.pull(zg, nearest if lc.supervised else labels)
                total = torch.add(total, terms["near"], alpha=lc.anchor_weight)  # total + w * term, one operation
            if lc.anchor_loss in ("nebula", "both"):
                terms["neb"] = nebula_gravitation_loss(dist_g, nearest, self.anchors.anchors, lc.repulsion_distance)
                weight = lc.anchor_weight * (lc.repulsion_weight if lc.anchor_loss == "both" else 1.0)
                total = torch.add(total, terms["neb"], alpha=weight)
            if self.metric is not None:
                pull = None
                if self.metric.order in (1, -1):  # the metric's anchor pull, by the (pseudo-)labels
                    pull = terms["near"] if "near" in terms and not lc.supervised else self.anchors.pull(zg, labels)
                terms["metric"] = self.metric(zg, labels, dist_g, pull)
                total = torch.add(total, terms["metric"], alpha=lc.metric_weight)
            self._last = (zg.detach(), dist_g.detach(), nearest)
            if lc.prior == "anchors" and log_sigma is not None:
                # prior N(a_c, I) with c the (clean) posterior mean's nearest anchor
                ref = mu if mu_clean is None else mu_clean
                prior_mean = self.anchors.anchors[self.anchors.distances(ref.detach()).argmin(1)]
        if log_sigma is not None:
            centre = mu if prior_mean is None else mu - prior_mean
            warm_steps = lc.kl_warmup_epochs * info.steps_per_epoch
            beta = lc.beta * warmup_weight(info.epoch * info.steps_per_epoch + info.step, warm_steps)
            if lc.free_bits > 0:
                kl_dim = kl_standard_normal(centre, log_sigma)
                terms["kl"] = kl_dim.sum(1).mean()
                total = torch.add(total, free_bits_kl(kl_dim, lc.free_bits).mean(), alpha=beta)
            else:
                terms["kl"] = mean_kl_standard_normal(centre, log_sigma)
                total = torch.add(total, terms["kl"], alpha=beta)
        return ModelOutput(loss=total, terms=terms, z=z, mu=mu, output=output, assign=assign)

    def neighbour_views(self) -> tuple[int, str]:
        """(k, space) for the trainer's neighbour mining (``loss.neighbours``, ``loss.neighbour_space``);
        k = 0 until the anchor terms are on."""
        lc = self.cfg.loss
        k = int(lc.neighbours) if self.anchors is not None and bool(self.anchors_ready) else 0
        return k, lc.neighbour_space

    # ------------------------------------------------------------------ trainer hooks
    def param_groups(self, lr: float, weight_decay: float) -> list[dict]:
        """Optimiser groups; anchors get no weight decay."""
        anchor_params = list(self.anchors.parameters()) if self.anchors is not None else []
        ids = {id(p) for p in anchor_params}
        rest = [p for p in self.parameters() if id(p) not in ids]
        groups = [{"params": rest, "lr": lr, "weight_decay": weight_decay, "name": "network"}]
        if anchor_params:
            groups.append({"params": anchor_params, "lr": lr, "weight_decay": 0.0, "name": "anchors"})
        return groups

    def on_epoch_start(self, epoch: int, embed_train: Callable[[], torch.Tensor], generator: torch.Generator,
                       train_inputs: Callable[[], torch.Tensor] | None = None) -> str | None:
        """Place the anchors when the warm-up ends; returns a message for the log, or None."""
        if self.anchors is None or bool(self.anchors_ready) or epoch < self.cfg.train.pretrain_epochs:
            return None
        mu = embed_train()
        inputs = train_inputs() if train_inputs is not None and self.anchor_init == "tsne" else None
        how = self.init_anchors(mu, generator, inputs)
        self.anchors_ready.fill_(True)
        return f"anchors placed at epoch {epoch}: {how}"

    @torch.no_grad()
    def init_anchors(self, mu: torch.Tensor, generator: torch.Generator, inputs: torch.Tensor | None = None) -> str:
        """Place the m anchors by ``self.anchor_init`` (see :mod:`nebula.latent.placement`); returns how."""
        centres, how = place_anchors(self.anchor_init, mu, self.anchors.num_anchors, generator, inputs)
        self.anchors.set_anchors(centres)
        return how

    def after_step(self) -> int:
        """Dead-anchor bookkeeping after an optimiser step; returns the number of anchors re-seeded."""
        if self.anchors is None or not hasattr(self, "_last"):
            return 0
        z, dist, nearest = self._last
        del self._last
        return self.anchors.update_usage(z, dist, nearest)


@register_model("nvc")
def _build_nvc(cfg: Config, dataset) -> NebulaCoder:
    model = NebulaCoder(cfg, dataset.input_shape, dataset.target_shape, dataset.modality)
    if model.anchors is not None and model.anchor_init == "tsne" and not dataset.x.is_floating_point():
        # refused before training rather than when the anchors are placed
        name = dataset.meta.get("name", "the data")
        raise ConfigError(f"train.anchor_init=tsne needs real-valued inputs, {name} has {dataset.x.dtype} "
                          "(e.g. token ids): use kmeans")
    return model


def _register_builtin() -> None:
    """Import the modules that register further methods (after everything above is defined)."""
    import importlib

    for module in ("nebula.contrastive.learner",):
        importlib.import_module(module)


_register_builtin()
