"""ContrastiveLearner: SimCLR and ManifoldCLR (variational Lie group feature augmentations) and baselines.

One model class serves the methods registered by :mod:`nebula.contrastive.method`:

* ``simclr``: NT-Xent between g(z0) and g(z1), z_i = backbone(view_i), g the projection head;
* ``manifoldclr``: z0_aug = T(c0) z0 with c0 ~ p(c | z0) (learned prior) replaces z0 in the contrastive loss,
  and the operators are trained by
  L = w_clr NT-Xent + w_to mean_n ||T(c) z0 - sg(z1)||^2 + w_kl(t) KL(q(c|z0,z1) || p(c|z0)) + w_shift ||mu_q||^2,
  c ~ q (docs/methods.md section 2.4). With a head: cosine NT-Xent (T = 0.5) between g(z0_aug) and g(z1); without
  (``head none``/``direct``): NT-Xent with similarity -mean((x - y)^2), z0 added as extra negatives;
* ``directclr``: ManifoldCLR with the DirectCLR head (loss on the first ``direct_dim`` features) and
  operators acting on those dimensions only;
* ``mixup``: z0_aug = z0 + m (z1 - z0), m ~ U(0, mixup_max) per sample (N, 1);
* ``noise``: z0_aug = z0 + sigma eps, eps ~ N(0, I) of shape (N, D) - one independent draw per sample and
  dimension (the reference's noise broadcast one draw over a whole axis, bug M1).

Choices (documented in docs/manifoldclr.md): the augmenting coefficients c0 and the operators are detached
in the contrastive branch (the contrastive loss shapes the backbone only through z0 and z1; the operators
learn from transport and KL); the transport loss uses a detached z0 unless
``contrastive.transport_grad_backbone`` (so it cannot shrink the backbone's features).

Optimiser groups (``param_groups``): backbone + head (train.lr, train.weight_decay); operators Psi
(``operator_lr`` 1e-2, decoupled weight decay ``operator_wd`` 1e-3, gradient-norm clip ``operator_clip`` 0.1
applied by a tensor hook during backward, see :class:`nebula.latent.lie.LieOperators`); coefficient networks
(``coefficient_lr``, no weight decay).
"""

from __future__ import annotations

import torch
from torch import nn

from nebula.config import Config
from nebula.contrastive.augment import AugmentOptions, TwoViewAugment
from nebula.contrastive.backbones import build_backbone
from nebula.contrastive.heads import build_head
from nebula.contrastive.losses import nt_xent
from nebula.errors import ConfigError
from nebula.latent.lie import VariationalLieOperators, exponential_warmup
from nebula.train.contract import ModelOutput, StepInfo

METHODS = ("simclr", "manifoldclr", "directclr", "mixup", "noise")
OPERATOR_METHODS = ("manifoldclr", "directclr")


class ContrastiveLearner(nn.Module):
    """Backbone + projection head + (operators) trained on two augmented views of each image.

    Args:
        cfg: run configuration (``cfg.contrastive`` holds the options).
        input_shape: (C, H, W) of one image.
        method: one of simclr, manifoldclr, directclr, mixup, noise.
    """

    def __init__(self, cfg: Config, input_shape: tuple[int, ...], method: str) -> None:
        super().__init__()
        if method not in METHODS:
            raise ConfigError(f"unknown contrastive method '{method}'; choose from {', '.join(METHODS)}")
        cc = cfg.contrastive
        self.cfg, self.cc, self.method = cfg, cc, method
        head_name = "direct" if method == "directclr" else cc.head
        self.backbone = build_backbone(cc.backbone, tuple(input_shape), cc.channels)
        dim = self.backbone.out_features
        self.head = build_head(head_name, dim, cc.proj_dim, cc.direct_dim)
        self.headless = head_name in ("none", "direct")
        similarity = cc.similarity if cc.similarity != "auto" else ("mse" if self.headless else "cosine")
        if similarity not in ("cosine", "mse"):
            raise ConfigError(f"contrastive.similarity must be auto, cosine or mse, found {cc.similarity!r}")
        self.similarity = similarity
        self.augment = TwoViewAugment(tuple(input_shape), AugmentOptions(
            crop_scale=cc.aug_crop_scale, rotation=cc.aug_rotation, translate=cc.aug_translate, shear=cc.aug_shear,
            noise_std=cc.aug_noise_std, erase_p=cc.aug_erase_p, jitter=cc.aug_jitter))
        self.lie: VariationalLieOperators | None = None
        if method in OPERATOR_METHODS:
            op_dim = cc.operator_dim or (cc.direct_dim if method == "directclr" else dim)
            if op_dim > dim or op_dim % cc.block_size != 0:
                raise ConfigError(f"contrastive.operator_dim {op_dim} must be <= the {dim} backbone features and a "
                                  f"multiple of contrastive.block_size {cc.block_size}")
            gen = torch.Generator().manual_seed(cfg.train.seed + 7919)
            self.lie = VariationalLieOperators(
                dim, cc.num_operators, cc.block_size, op_dim, cc.hidden_mult, cc.scale_prior, cc.mu_prior, cc.threshold,
                cc.prior_warmup, cc.operator_clip, gen)
        self.architecture = {"method": method, "backbone": cc.backbone, "head": head_name, "features": dim,
                             "similarity": similarity, "operators": self.lie is not None}

    # ------------------------------------------------------------------ features
    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features (N, D) (call in eval mode); what probes and the run folder use."""
        return self.backbone(x)

    @torch.no_grad()
    def embedding_batch(self, x: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:  # noqa: ARG002
        """z = backbone features (N, D); assign = -1 (no anchors)."""
        z = self.backbone(x)
        return {"z": z, "assign": torch.full((len(z),), -1, dtype=torch.long, device=z.device)}

    # ------------------------------------------------------------------ feature augmentation
    def feature_augment(self, z0: torch.Tensor, z1: torch.Tensor, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """z0_aug (N, D) for the contrastive loss and the method's own loss terms (weighted total under 'aux')."""
        cc, terms = self.cc, {}
        if self.method == "mixup":
            m = torch.rand(len(z0), 1, device=z0.device, dtype=z0.dtype) * cc.mixup_max
            return z0 + m * (z1 - z0), terms
        if self.method == "noise":
            return z0 + cc.noise_std * torch.randn_like(z0), terms
        if self.lie is None:
            return z0, terms
        k = cc.operator_batch if 0 < cc.operator_batch < len(z0) else len(z0)
        lt = self.lie.losses(z0[:k], z1[:k], step, detach_z0=not cc.transport_grad_backbone)
        with torch.no_grad():
            mu_p, b_p = self.lie.prior_params(z0, step)
            c0 = self.lie.sample(mu_p, b_p)
        z0_aug = self.lie.transport(z0, c0, detach_operators=True)
        w_kl = cc.weight_kl * exponential_warmup(step, cc.kl_warmup)
        aux = cc.weight_transport * lt["transport"] + w_kl * lt["kl"]
        if cc.weight_shift > 0:
            aux = aux + cc.weight_shift * lt["shift"]
        terms = {"transport": lt["transport"], "kl": lt["kl"], "shift": lt["shift"], "aux": aux,
                 "active": (lt["c_q"].detach().abs() > 1e-2).float().sum(1).mean()}
        return z0_aug, terms

    # ------------------------------------------------------------------ loss
    def forward(self, batch: dict[str, torch.Tensor], info: StepInfo | None = None) -> ModelOutput:
        info = info or StepInfo()
        step = info.epoch * info.steps_per_epoch + info.step
        x = batch["x"]
        n = len(x)
        v0, v1 = self.augment(x)
        h = self.backbone(torch.cat([v0, v1], dim=0))
        z0, z1 = h[:n], h[n:]
        z0_aug, extra = self.feature_augment(z0, z1, step)
        aux = extra.pop("aux", None)
        g = self.head(torch.cat([z0_aug, z1], dim=0))
        negatives = self.head(z0) if self.headless and self.method != "simclr" else None
        clr = nt_xent(g[:n], g[n:], self.cc.temperature, self.similarity, negatives)
        total = self.cc.weight_contrastive * clr
        if aux is not None:
            total = total + aux
        terms = {"clr": clr.detach(), **{k: v.detach() for k, v in extra.items()}}
        return ModelOutput(loss=total, terms=terms, z=z0.detach())

    # ------------------------------------------------------------------ trainer hooks
    def param_groups(self, lr: float, weight_decay: float) -> list[dict]:
        """backbone + head (lr, weight_decay); operators (operator_lr, operator_wd); coefficient MLPs."""
        groups = [{"params": list(self.backbone.parameters()) + list(self.head.parameters()), "lr": lr,
                   "weight_decay": weight_decay, "name": "network"}]
        if self.lie is not None:
            groups.append({"params": [self.lie.operators.psi], "lr": self.cc.operator_lr,
                           "weight_decay": self.cc.operator_wd, "name": "operators"})
            groups.append({"params": list(self.lie.posterior.parameters()) + list(self.lie.prior.parameters()),
                           "lr": self.cc.coefficient_lr, "weight_decay": 0.0, "name": "coefficients"})
        return [g for g in groups if g["params"]]
