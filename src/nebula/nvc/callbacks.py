"""NVC's own training mechanics, as callbacks of the trainer (:mod:`nebula.train.callbacks`).

* :class:`AnchorPlacement`: when the warm-up of ``pretrain_epochs`` ends (before the first step without
  warm-up), place the anchors on the training latents (or on a t-SNE map of the inputs) and switch the
  anchor terms on; at the ``train.refine`` epochs re-place them on a t-SNE map of the latents
  (:mod:`nebula.latent.refine`). Under torchrun rank 0 alone places them and every parameter and buffer
  (and the partition targets) is then broadcast from it. At the start of fitting it sets the anchor term's
  weight (:func:`anchor_weight`).
* :class:`PartitionTargets`: with ``pseudo_labels = partition``, batches carry ``part``, each sample's part
  of the placement's partition (until ``loss.partition_until`` of the run); checkpoints keep the parts.
* :class:`DeadAnchors`: after each step, count idle steps per anchor and re-seed dead ones (after
  ``loss.dead_after_epochs`` epochs' worth of steps); the epoch's count is the ``reseeded`` column of
  metrics.csv.
* :class:`NeighbourViews`: each epoch, mine every training sample's k nearest training samples (latent
  or input space); batches then carry ``x_nb``, one of them per sample, drawn from (seed, epoch, step).
"""

from __future__ import annotations

import sys
from typing import Any

import torch

from nebula.latent.anchors import squared_distances
from nebula.latent.placement import TSNE_MIN_SAMPLES, place_anchors_with_parts
from nebula.latent.refine import align_parts, part_means, refine_epochs
from nebula.latent.schedule import dead_after_steps
from nebula.train import distributed
from nebula.train.callbacks import Callback


class AnchorPlacement(Callback):
    """Places ``model.anchors`` at the start of epoch ``model.pretrain_epochs`` (when not yet placed) and
    refines them at the ``train.refine`` epochs."""

    def on_fit_start(self, trainer: Any) -> None:
        model = trainer.model
        note = getattr(model, "pretrain_note", None)
        if note and trainer.rank == 0:
            print(f"nebula: {note}", file=sys.stderr)
        if model.anchors is not None:
            model.anchors.anchor_weight = anchor_weight(model, len(trainer.train_index))

    def on_epoch_start(self, trainer: Any, epoch: int, resumed: bool) -> None:
        model = trainer.model
        if resumed or model.anchors is None:
            return
        refine = bool(model.anchors_ready) and epoch in refine_epochs(model.pretrain_epochs, trainer.tc.epochs,
                                                                       trainer.tc.refine)
        first = epoch == model.pretrain_epochs == 0  # no warm-up: placed before the first step
        if not refine and (epoch < model.pretrain_epochs or (bool(model.anchors_ready) and not first)):
            return
        msg = None
        if trainer.rank == 0:  # e.g. a t-SNE placement: once, then broadcast
            mu = trainer.embed(trainer.train_index)
            if refine:
                msg = refine_anchors(model, mu, trainer.generator, epoch)
            else:
                inputs = trainer.x[trainer.train_index] if model.anchor_init == "tsne" else None
                how, parts = model.anchors.place_with_parts(mu, model.anchor_init, trainer.generator, inputs,
                                                            model.placement_map, model.lc.partition_keep,
                                                            model.placement_cut)
                model.targets = parts.to(trainer.device) if model.pseudo_labels == "partition" else None
                model.anchors_ready.fill_(True)
                msg = f"anchors placed at epoch {epoch}: {how}"
        changed = torch.tensor([1.0 if msg else 0.0], device=trainer.device)
        if trainer.world_size > 1 and distributed.all_reduce_max(changed)[0] > 0:
            distributed.broadcast_module(model)
            _share_targets(trainer, model)
        if msg:
            trainer.log(msg)
            trainer.history.messages.append(msg)


def anchor_weight(model: Any, n_train: int) -> float:
    """``loss.partition_weight`` when a t-SNE map's partition labels the anchor terms (a ``tsne`` placement
    with partition pseudo-labels, on enough samples for t-SNE), else ``loss.anchor_weight``."""
    lc = model.lc
    mapped = (model.anchor_init == "tsne" and model.pseudo_labels == "partition"
              and n_train >= max(TSNE_MIN_SAMPLES, model.anchors.num_anchors))
    return float(lc.partition_weight) if mapped and lc.partition_weight > 0 else float(lc.anchor_weight)


@torch.no_grad()
def refine_anchors(model: Any, mu: torch.Tensor, generator: torch.Generator, epoch: int) -> str:
    """Re-place the anchors on a partition (``train.placement_cut``) of a t-SNE map of the training latents mu (n_train, d),
    its parts renumbered to agree with the current targets (nearest anchors without them); returns the log line."""
    m = model.anchors.num_anchors
    mu_cpu = mu.float().cpu()
    current = model.targets.cpu() if model.targets is not None else model.anchors.assign(mu).cpu()
    _, _, parts = place_anchors_with_parts("tsne", mu_cpu, m, generator, mu_cpu, cut=model.placement_cut)
    known = parts >= 0
    new = torch.from_numpy(align_parts(parts[known].numpy(), current[known].numpy(), m))
    parts[known] = new
    model.anchors.set_anchors(part_means(mu_cpu[known], new, m, model.anchors.anchors.detach().cpu()))
    if model.targets is not None:
        model.targets = parts.to(mu.device)
    return f"anchors refined at epoch {epoch}: t-SNE of {int(known.sum())} training latents"


def _share_targets(trainer: Any, model: Any) -> None:
    """Under torchrun: every rank gets rank 0's partition targets (n_train,)."""
    if model.pseudo_labels != "partition":
        return
    import torch.distributed as dist

    targets = model.targets if trainer.rank == 0 and model.targets is not None else torch.full(
        (len(trainer.train_index),), -1, dtype=torch.long, device=trainer.device)
    dist.broadcast(targets, 0)
    model.targets = targets


class PartitionTargets(Callback):
    """Adds ``part`` (each sample's part of the placement's partition, -1 where none) to every batch while
    ``epoch < until * train.epochs``; checkpoints keep the (n_train,) parts."""

    def __init__(self, until: float = 1.0) -> None:
        self.until = until
        self._row: torch.Tensor | None = None

    def on_batch(self, trainer: Any, batch: dict[str, torch.Tensor], epoch: int, step: int) -> None:
        targets = trainer.model.targets
        if targets is None or epoch >= self.until * trainer.tc.epochs:
            return
        if self._row is None:
            self._row = torch.full((len(trainer.x),), -1, dtype=torch.long, device=trainer.device)
            self._row[trainer.train_index] = torch.arange(len(trainer.train_index), device=trainer.device)
        batch["part"] = targets[self._row[batch["index"]]]

    def on_checkpoint(self, trainer: Any, state: dict[str, Any]) -> None:
        targets = trainer.model.targets
        state["partition_targets"] = targets.cpu() if targets is not None else None

    def on_resume(self, trainer: Any, state: dict[str, Any]) -> None:
        targets = state.get("partition_targets")
        trainer.model.targets = targets.to(trainer.device) if targets is not None else None


class DeadAnchors(Callback):
    """Dead-anchor bookkeeping after every step; adds the epoch's ``reseeded`` count to its row. An anchor is
    dead after ``loss.dead_after_epochs`` epochs' worth of steps without a latent."""

    def __init__(self) -> None:
        self.count = 0

    def on_fit_start(self, trainer: Any) -> None:
        model = trainer.model
        model.anchors.dead_after = dead_after_steps(model.lc.dead_after_epochs, trainer.steps_per_epoch)

    def on_epoch_start(self, trainer: Any, epoch: int, resumed: bool) -> None:
        if not resumed:
            self.count = 0

    def on_step_end(self, trainer: Any, epoch: int, step: int, out: Any) -> None:
        self.count += trainer.model.anchors.reseed_dead_anchors()

    def on_epoch_end(self, trainer: Any, epoch: int, row: dict[str, Any]) -> None:
        row["reseeded"] = self.count

    def on_checkpoint(self, trainer: Any, state: dict[str, Any]) -> None:
        if state.get("step"):  # mid-epoch: the count so far continues after a resume
            state["partial"]["reseeded"] = self.count

    def on_resume(self, trainer: Any, state: dict[str, Any]) -> None:
        self.count = int(state["partial"].get("reseeded", 0)) if state.get("step") else 0


class NeighbourViews(Callback):
    """k-nearest-neighbour views (``loss.neighbours`` k, ``loss.neighbour_space``) once the anchor terms are on."""

    def __init__(self, k: int, space: str = "latent") -> None:
        self.k, self.space = k, space
        #: (n_train, k) global indices of each training sample's k nearest training samples (or None)
        self.neighbours: torch.Tensor | None = None
        self._row: torch.Tensor | None = None

    def on_epoch_start(self, trainer: Any, epoch: int, resumed: bool) -> None:
        if resumed:
            return
        model = trainer.model
        active = model.anchors is not None and bool(model.anchors_ready)
        if not active or self.k <= 0 or len(trainer.train_index) < 2:
            self.neighbours = None
        elif self.neighbours is None or self.space == "latent":  # input-space neighbours never change
            self.neighbours = mine_neighbours(trainer, self.k, space=self.space)

    def on_batch(self, trainer: Any, batch: dict[str, torch.Tensor], epoch: int, step: int) -> None:
        if self.neighbours is None:
            return
        if self._row is None:
            self._row = torch.full((len(trainer.x),), -1, dtype=torch.long, device=trainer.device)
            self._row[trainer.train_index] = torch.arange(len(trainer.train_index), device=trainer.device)
        index = batch["index"]
        # one of each sample's k neighbours, drawn from (seed, epoch, step) so a resume is exact
        g = torch.Generator().manual_seed((trainer.tc.seed * 100003 + epoch) * 100003 + step)
        pick = torch.randint(0, self.neighbours.shape[1], (len(index),), generator=g).to(trainer.device)
        batch["x_nb"] = torch.index_select(trainer.x, 0, self.neighbours[self._row[index], pick])

    def on_checkpoint(self, trainer: Any, state: dict[str, Any]) -> None:
        state["neighbours"] = self.neighbours.cpu() if self.neighbours is not None else None

    def on_resume(self, trainer: Any, state: dict[str, Any]) -> None:
        nb = state.get("neighbours")
        self.neighbours = nb.to(trainer.device) if nb is not None else None


@torch.no_grad()
def mine_neighbours(trainer: Any, k: int, chunk: int = 1024, space: str = "latent") -> torch.Tensor:
    """(n_train, k) global indices of the k nearest other training samples by squared distance of the
    embeddings (``space`` latent) or of the flattened inputs (``input``), chunk x n_train distances at a time."""
    index = trainer.train_index
    feats = trainer.x[index].flatten(1).float() if space == "input" else trainer.embed(index)
    k = min(k, len(feats) - 1)
    out = []
    for i in range(0, len(feats), chunk):
        d = squared_distances(feats[i : i + chunk], feats)
        rows = torch.arange(i, min(i + chunk, len(feats)), device=feats.device)
        d[rows - i, rows] = float("inf")  # never its own neighbour
        out.append(d.topk(k, dim=1, largest=False).indices)
    return index[torch.cat(out)]
