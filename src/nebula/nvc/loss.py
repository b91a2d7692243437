"""NebulaLoss: NVC's latent terms as one module that any PyTorch training loop can use.

Given latents z: (V * N, d) of N samples in V views (the first N the reference view), with
D_ik = ||z_i - a_k||^2 to the m anchors a (docs/methods.md section 1):

    c_i   = argmin_k D_ik                      nearest anchor (no gradient)
    l_i   = c_i of the reference view          pseudo-label of every view (or the given labels)
    L     = w_c L_anchor + w_m L_metric

with L_anchor = L_near = mean_i D_{i, l_i}, the nebula gravitation term L_neb, or L_near + w_rep L_neb
(``anchor_loss``), and L_metric one of the metric-learning orders -r 1 / 2 / 3 / -1 on the labels
(:class:`~nebula.latent.metric.PseudoLabelMetricLoss`). ``pseudo_labels="balanced"`` equipartitions the
labels by Sinkhorn instead of taking the nearest anchor.

Example, with your own encoder::

    nebula_loss = nebula.NebulaLoss(num_anchors=10, latent_dim=16, metric_order=-1)
    ...                                    # a few epochs of your own reconstruction or other loss first
    nebula_loss.place(encoder(x_train))    # anchors on a k-means partition of the latents
    out = nebula_loss(encoder(x))          # out.loss (scalar), out.terms {"near": ..., "metric": ...}
    (task_loss + out.loss).backward(); optimiser.step()
    nebula_loss.reseed_dead_anchors()      # optional: move anchors that owned no latent for a while
    labels = nebula_loss.assign(encoder(x_test))

The module is also the anchor store of nebula's own NVC model, so its state (``anchors``,
``idle_steps``, ``reseeded``) is what the run folder saves under ``anchors.*``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from nebula.latent.anchors import NebulaAnchors, balanced_assignment, nebula_gravitation_loss
from nebula.latent.metric import PseudoLabelMetricLoss
from nebula.latent.placement import place_anchors_with_parts


@dataclass
class NebulaTerms:
    """What :meth:`NebulaLoss.forward` returns.

    loss: scalar, ``base`` plus the weighted terms; terms: unweighted scalar terms (near, neb, metric);
    labels: (V * N,) the labels the terms used; nearest: (V * N,) every view's own nearest anchor.
    """

    loss: torch.Tensor
    terms: dict[str, torch.Tensor] = field(default_factory=dict)
    labels: torch.Tensor | None = None
    nearest: torch.Tensor | None = None


class NebulaLoss(NebulaAnchors):
    """The anchors (m, d) with NVC's anchor and metric terms.

    Args:
        num_anchors, latent_dim: m and d.
        anchor_loss: ``nearest``, ``nebula`` or ``both``; anchor_weight w_c; repulsion_weight w_rep (with
            ``both``); repulsion_distance r of the clamped repulsion.
        metric_order: 0 (none), 1, 2, 3 or -1; metric_form ``ratio`` or ``hinge``; metric_weight w_m;
            metric_margin (ratio's nu), hinge_margin.
        pseudo_labels: ``nearest``, ``balanced`` (Sinkhorn with temperature ``balance_epsilon``) or
            ``partition`` (the ``targets`` given to :meth:`forward`, e.g. the placement's partition of the
            training set; the nearest anchor where a sample has none).
        reseed_dead, dead_after: re-seed an anchor that owned no latent for ``dead_after`` calls of
            :meth:`reseed_dead_anchors`.
    """

    def __init__(self, num_anchors: int, latent_dim: int, *, anchor_loss: str = "nearest", anchor_weight: float = 1.0,
                 repulsion_weight: float = 1.0, repulsion_distance: float = 4.0, metric_order: int = 0,
                 metric_form: str = "ratio", metric_weight: float = 0.1, metric_margin: float = 1.0,
                 hinge_margin: float = 1.0, pseudo_labels: str = "nearest", balance_epsilon: float = 0.05,
                 reseed_dead: bool = True, dead_after: int = 200) -> None:
        super().__init__(num_anchors, latent_dim, reseed_dead, dead_after)
        if anchor_loss not in ("nearest", "nebula", "both"):
            raise ValueError(f"anchor_loss must be nearest, nebula or both, found {anchor_loss!r}")
        if pseudo_labels not in ("nearest", "balanced", "partition"):
            raise ValueError(f"pseudo_labels must be nearest, balanced or partition, found {pseudo_labels!r}")
        self.anchor_loss, self.anchor_weight = anchor_loss, anchor_weight
        self.repulsion_weight, self.repulsion_distance = repulsion_weight, repulsion_distance
        self.metric = PseudoLabelMetricLoss(metric_order, metric_form, metric_margin, hinge_margin) if metric_order else None
        self.metric_weight = metric_weight
        self.pseudo_labels, self.balance_epsilon = pseudo_labels, balance_epsilon
        self._last: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def forward(self, z: torch.Tensor, views: int = 1, labels: torch.Tensor | None = None,
                base: torch.Tensor | None = None, targets: torch.Tensor | None = None) -> NebulaTerms:
        """The terms for z: (views * N, d), the first N rows the reference view.

        labels: (N,) known classes (supervised: they replace the pseudo-labels of the metric term; the
        anchor pull then uses each latent's own nearest anchor); base: a scalar the weighted terms are
        added to (one sum with the caller's own terms); targets: (N,) part in [0, m) of each sample, -1
        where none, the pseudo-labels with ``pseudo_labels="partition"`` (ignored otherwise).
        """
        n = len(z) // views
        # the N x m distances give the labels; only the nebula term needs their graph (the pulls are
        # computed from the differences)
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.anchor_loss in ("nebula", "both")):
            dist = self.distances(z)
        nearest = dist.detach().argmin(1)
        supervised = labels is not None
        if supervised:
            labels = labels.repeat(views)
        elif self.pseudo_labels == "partition" and targets is not None:
            labels = torch.where(targets >= 0, targets, nearest[:n]).repeat(views)
        elif self.pseudo_labels == "balanced":
            labels = balanced_assignment(dist[:n], self.balance_epsilon).repeat(views)
        else:  # the reference view's nearest anchor labels every view
            labels = nearest[:n].repeat(views) if views > 1 else nearest
        total = base if base is not None else z.new_zeros(())
        terms: dict[str, torch.Tensor] = {}
        if self.anchor_loss in ("nearest", "both"):
            terms["near"] = self.pull(z, nearest if supervised else labels)
            total = torch.add(total, terms["near"], alpha=self.anchor_weight)  # total + w * term, one operation
        if self.anchor_loss in ("nebula", "both"):
            terms["neb"] = nebula_gravitation_loss(dist, nearest, self.anchors, self.repulsion_distance)
            weight = self.anchor_weight * (self.repulsion_weight if self.anchor_loss == "both" else 1.0)
            total = torch.add(total, terms["neb"], alpha=weight)
        if self.metric is not None:
            pull = None
            if self.metric.order in (1, -1):  # the metric's anchor pull, by the (pseudo-)labels
                pull = terms["near"] if "near" in terms and not supervised else self.pull(z, labels)
            terms["metric"] = self.metric(z, labels, dist, pull)
            total = torch.add(total, terms["metric"], alpha=self.metric_weight)
        self._last = (z.detach(), dist.detach(), nearest)
        return NebulaTerms(loss=total, terms=terms, labels=labels, nearest=nearest)

    @torch.no_grad()
    def assign(self, z: torch.Tensor) -> torch.Tensor:
        """(N,) int64 index of each latent's nearest anchor."""
        return self.distances(z).argmin(1)

    @torch.no_grad()
    def place(self, z: torch.Tensor, method: str = "kmeans", generator: torch.Generator | None = None,
              inputs: torch.Tensor | None = None, space: str = "input") -> str:
        """Put the anchors on the latents z: (N, d) by ``method`` (kmeans, random, or tsne of ``inputs``, of
        z, or of the better of both: ``space`` input, latent or auto; :mod:`nebula.latent.placement`);
        returns how, for a log line."""
        return self.place_with_parts(z, method, generator, inputs, space)[0]

    @torch.no_grad()
    def place_with_parts(self, z: torch.Tensor, method: str = "kmeans", generator: torch.Generator | None = None,
                         inputs: torch.Tensor | None = None, space: str = "input",
                         keep: float = 1.0, cut: str = "auto") -> tuple[str, torch.Tensor]:
        """:meth:`place` plus the partition it used: (N,) int64 part of each latent (-1 outside a t-SNE subset
        and, with ``keep`` < 1, outside each part's most central ``keep`` fraction); ``cut``: how a t-SNE map is
        cut into parts (kmeans, ward or auto)."""
        generator = generator if generator is not None else torch.Generator().manual_seed(0)
        centres, how, parts = place_anchors_with_parts(method, z, self.num_anchors, generator, inputs, space,
                                                       keep, cut)
        self.set_anchors(centres)
        return how, parts

    @torch.no_grad()
    def reseed_dead_anchors(self) -> int:
        """Dead-anchor bookkeeping for the latents of the last :meth:`forward`; returns how many anchors moved."""
        if self._last is None:
            return 0
        z, dist, nearest = self._last
        self._last = None
        return self.update_usage(z, dist, nearest)
