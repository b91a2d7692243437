"""The ``contrastive`` config section: backbone, head, loss, augmentations and Lie operators of the contrastive
methods (re-exported by :mod:`nebula.config`)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ContrastiveConfig:
    """Contrastive methods (``method`` simclr, manifoldclr, directclr, mixup, noise; docs/methods.md section 2).

    Backbone and head: ``backbone`` cnn (small, 8x8..32x32) or resnet18 (CIFAR stem); ``channels`` sizes the
    cnn; ``head`` mlp / linear / none / direct with ``proj_dim`` outputs (``direct_dim`` for DirectCLR).
    Loss: NT-Xent with ``temperature``; ``similarity`` auto = cosine with a head, mse without.
    Augmentations: see :class:`nebula.contrastive.augment.AugmentOptions` (``aug_*``).
    Operators (manifoldclr, directclr): ``num_operators`` M, ``block_size`` b, ``operator_dim`` (0 = all
    features; DirectCLR 64), ``operator_batch`` pairs per step for the transport/KL terms (0: all), Laplace ``scale_prior`` s0 / ``mu_prior`` mu0, ``threshold`` lambda,
    ``prior_warmup`` steps, own optimiser group (``operator_lr``, ``operator_wd``, ``operator_clip``).
    Total: w_clr * contrastive + w_to * transport + w_kl(t) * KL + w_shift * ||mu_q||^2, with w_kl warmed
    up exponentially from 5e-3 over ``kl_warmup`` steps (0: none). Transport = per-pair squared distance
    (summed over dims). ``operator_lr`` 1e-2 (the reference's 1e-3, docs/methods.md section 2.7, suits runs of tens of thousands of steps; a few
    hundred steps need the larger rate for Psi to move).
    Baselines: ``mixup_max`` (z0 + m (z1 - z0), m ~ U(0, mixup_max)), ``noise_std`` (z0 + sigma eps).
    Few-label probe: ``fewshot_labels`` per class, ``fewshot_trials`` seeded trials.
    """

    backbone: str = "cnn"
    channels: list[int] = field(default_factory=lambda: [32, 64, 128])
    head: str = "mlp"
    proj_dim: int = 128
    direct_dim: int = 64
    temperature: float = 0.5
    similarity: str = "auto"
    aug_crop_scale: float = 0.6
    aug_rotation: float = 12.0
    aug_translate: float = 0.1
    aug_shear: float = 8.0
    aug_noise_std: float = 0.05
    aug_erase_p: float = 0.25
    aug_jitter: float = 0.4
    num_operators: int = 8
    block_size: int = 8
    operator_dim: int = 0
    operator_batch: int = 256
    hidden_mult: int = 4
    scale_prior: float = 0.01
    mu_prior: float = 0.05
    threshold: float = 0.0
    prior_warmup: int = 500
    operator_lr: float = 1e-2
    operator_wd: float = 1e-3
    operator_clip: float = 0.1
    coefficient_lr: float = 1e-3
    weight_contrastive: float = 1.0
    weight_transport: float = 1.0
    weight_kl: float = 1e-3
    weight_shift: float = 0.0
    kl_warmup: int = 5000
    transport_grad_backbone: bool = False
    mixup_max: float = 0.5
    noise_std: float = 0.1
    fewshot_labels: int = 5
    fewshot_trials: int = 10
