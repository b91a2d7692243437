"""NebulaCoder: autoencoder / VAE with nebula anchors and pseudo-label metric learning (NVC).

Total loss (docs/methods.md section 1.8, weights from :class:`~nebula.config.LossConfig`):

    L = mean_i(L_rec,i + beta_t KL_i) + lambda_c L_anchor + lambda_m L_metric

with beta_t the warmed-up KL weight, and the anchor and metric terms those of
:class:`~nebula.nvc.loss.NebulaLoss` (which also holds the anchors). They start after
``pretrain_epochs`` epochs, when the :class:`~nebula.nvc.callbacks.AnchorPlacement` callback places
the anchors (``anchor_init``: t-SNE of the inputs for images, k-means on the latents, or random;
:mod:`nebula.latent.placement`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from nebula.config import Config, LossConfig, ModelConfig
from nebula.latent.gaussian import (
    DeterministicHead,
    GaussianHead,
    free_bits_kl,
    kl_standard_normal,
    mean_kl_standard_normal,
    warmup_weight,
)
from nebula.latent.schedule import resolve_pretrain_epochs
from nebula.losses import get_reconstruction
from nebula.modalities import build_augment, resolve_anchor_init, resolve_architecture
from nebula.nn import build_decoder, build_encoder
from nebula.nvc.callbacks import AnchorPlacement, DeadAnchors, NeighbourViews, PartitionTargets
from nebula.nvc.loss import NebulaLoss
from nebula.train.callbacks import Callback
from nebula.train.contract import ModelOutput, StepInfo


def identity_gather(t: torch.Tensor) -> torch.Tensor:
    return t


class NebulaCoder(nn.Module):
    """Encoder -> latent head -> (anchors, metric) -> decoder, for any registered modality.

    Args:
        model, loss: the ``model`` and ``loss`` sections of the configuration.
        input_shape: shape of one input sample, e.g. (1, 8, 8).
        target_shape: shape of one reconstruction target (differs for completion tasks).
        modality: registered modality name (image, points, voxels, text).
        anchor_init: anchor placement (``auto``: the modality's choice).
        pretrain_epochs: epochs of plain (V)AE training before the anchors are placed.
        augment: training-time input augmentation options (None: the modality's default; {}: none).
    """

    def __init__(self, model: ModelConfig, loss: LossConfig, input_shape: tuple[int, ...],
                 target_shape: tuple[int, ...], modality: str = "image", anchor_init: str = "auto",
                 pretrain_epochs: int = 10, augment: dict[str, Any] | None = None) -> None:
        super().__init__()
        m, lc = model, loss
        self.mc, self.lc = m, lc
        enc_name, dec_name, rec_name = resolve_architecture(modality, m.arch, m.decoder, lc.reconstruction, input_shape)
        self.architecture = {"encoder": enc_name, "decoder": dec_name, "reconstruction": rec_name}
        self.anchor_init = resolve_anchor_init(modality, anchor_init)
        # auto: a t-SNE placement's partition labels the anchor terms (docs/clustering.md, issue 13)
        self.pseudo_labels = (lc.pseudo_labels if lc.pseudo_labels != "auto"
                              else "partition" if self.anchor_init == "tsne" else "nearest")
        self.pretrain_epochs = pretrain_epochs
        #: why the requested warm-up was shortened (printed on stderr when training starts), or None
        self.pretrain_note: str | None = None
        self.placement_map = "auto"  # the t-SNE map of a tsne placement (train.placement_map)
        self.placement_cut = "auto"  # how that map is cut into parts (train.placement_cut)
        #: (n_train,) part of each training sample with ``pseudo_labels = partition`` (-1: none); set by
        #: the :class:`~nebula.nvc.callbacks.AnchorPlacement` callback, kept in checkpoints by
        #: :class:`~nebula.nvc.callbacks.PartitionTargets`
        self.targets: torch.Tensor | None = None
        self.augment = build_augment(modality, augment, input_shape)
        self.encoder = build_encoder(enc_name, input_shape, m)
        head = GaussianHead if m.variational else DeterministicHead
        self.head = head(self.encoder.out_features, m.latent_dim)
        self.anchors = NebulaLoss(
            m.num_anchors, m.latent_dim, anchor_loss=lc.anchor_loss, anchor_weight=lc.anchor_weight,
            repulsion_weight=lc.repulsion_weight, repulsion_distance=lc.repulsion_distance,
            metric_order=lc.metric_order, metric_form=lc.metric_form, metric_weight=lc.metric_weight,
            metric_margin=lc.metric_margin, hinge_margin=lc.hinge_margin, pseudo_labels=self.pseudo_labels,
            balance_epsilon=lc.balance_epsilon, reseed_dead=lc.reseed_dead,
        ) if m.use_anchors else None
        self.condition = bool(m.condition_decoder and self.anchors is not None)
        dec_in = m.latent_dim + (m.num_anchors if self.condition else 0)
        self.decoder = build_decoder(dec_name, dec_in, target_shape, m, self.encoder)
        self.reconstruction = get_reconstruction(rec_name)
        self.register_buffer("anchors_ready", torch.tensor(self.anchors is None or pretrain_epochs == 0))
        # replaced by an all-gather with gradient under DistributedDataParallel
        self.gather: Callable[[torch.Tensor], torch.Tensor] = identity_gather

    @classmethod
    def from_config(cls, cfg: Config, input_shape: tuple[int, ...], target_shape: tuple[int, ...],
                    modality: str = "image") -> NebulaCoder:
        """The model of a run configuration (its model and loss sections, the placement options of train and
        the augmentation of data)."""
        pretrain, note = resolve_pretrain_epochs(cfg.train.pretrain_epochs, cfg.train.epochs)
        model = cls(cfg.model, cfg.loss, input_shape, target_shape, modality, cfg.train.anchor_init, pretrain,
                    cfg.data.augment)
        model.pretrain_note = note
        model.placement_map = cfg.train.placement_map
        model.placement_cut = cfg.train.placement_cut
        return model

    # ------------------------------------------------------------------ building blocks
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """x: (N, *input_shape) -> (z, mu, log_sigma), each (N, d) (log_sigma None for AE)."""
        return self.head(self.encoder(x))

    def decode(self, z: torch.Tensor, target: torch.Tensor | None = None, dist: torch.Tensor | None = None) -> torch.Tensor:
        """z: (N, d) -> decoder output (N, *target_shape); conditions on softmax(-D/tau) when enabled."""
        if self.condition:
            dist = self.anchors.distances(z) if dist is None else dist
            z = torch.cat([z, self.anchors.soft_assign(dist, self.mc.condition_tau)], dim=1)
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
        """What the run folder stores per sample: z = mu (N, d), assign (N,) nearest anchor (-1 without
        anchors) and rec (N,), the per-sample reconstruction loss of decode(mu) (eval mode)."""
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
        lc = self.lc
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
        labels = None
        prior_mean = None
        if active:
            latent = mu if lc.anchor_input == "mu" else z
            views, mu_clean = 1, None
            if lc.view_consistency and clean is not x:
                # the clean view's pseudo-label labels both views: augmented latents are pulled to its anchor
                views = 2
                mu_clean = self.encode(clean)[1]
                zg = torch.cat([self.gather(mu_clean), self.gather(latent)])
            else:
                zg = self.gather(latent)
            if "x_nb" in batch:
                # a nearest training neighbour is one more view, labelled by the sample's pseudo-label
                x_nb = self.augment(batch["x_nb"]) if self.training and self.augment is not None else batch["x_nb"]
                zg = torch.cat([zg, self.gather(self.encode(x_nb)[1])])
                views += 1
            if lc.supervised and "y" not in batch:
                raise ValueError("loss.supervised needs labelled data")
            known = self.gather(batch["y"]) if lc.supervised else None
            part = self.gather(batch["part"]) if "part" in batch else None
            nebula = self.anchors(zg, views, known, base=total, targets=part)
            total, labels = nebula.loss, nebula.labels
            terms.update(nebula.terms)
            if lc.prior == "anchors" and log_sigma is not None:
                # prior N(a_c, I) with c the (clean) posterior mean's nearest anchor
                ref = mu if mu_clean is None else mu_clean
                prior_mean = self.anchors.anchors[self.anchors.assign(ref.detach())]
        if log_sigma is not None:
            centre = mu if prior_mean is None else mu - prior_mean
            warm_steps = lc.kl_warmup_epochs * info.steps_per_epoch
            beta = lc.beta * warmup_weight(info.global_step, warm_steps)
            if lc.free_bits > 0:
                kl_dim = kl_standard_normal(centre, log_sigma)
                terms["kl"] = kl_dim.sum(1).mean()
                total = torch.add(total, free_bits_kl(kl_dim, lc.free_bits).mean(), alpha=beta)
            else:
                terms["kl"] = mean_kl_standard_normal(centre, log_sigma)
                total = torch.add(total, terms["kl"], alpha=beta)
        return ModelOutput(loss=total, terms=terms, z=z, mu=mu, output=output, pseudo_labels=labels)

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

    def callbacks(self) -> list[Callback]:
        """NVC's callbacks: anchor placement (and refinement), partition targets (``pseudo_labels`` partition),
        neighbour views (``loss.neighbours`` > 0), dead anchors."""
        if self.anchors is None:
            return []
        out: list[Callback] = [AnchorPlacement()]
        if self.pseudo_labels == "partition":
            out.append(PartitionTargets(self.lc.partition_until))
        if self.lc.neighbours > 0:
            out.append(NeighbourViews(int(self.lc.neighbours), self.lc.neighbour_space))
        return [*out, DeadAnchors()]
