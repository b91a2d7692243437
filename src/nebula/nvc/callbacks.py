"""NVC's own training mechanics, as callbacks of the trainer (:mod:`nebula.train.callbacks`).

* :class:`AnchorPlacement`: when the warm-up of ``pretrain_epochs`` ends, place the anchors on the
  training latents (or on a t-SNE map of the inputs) and switch the anchor terms on. Under torchrun
  rank 0 alone places them and every parameter and buffer is then broadcast from it.
* :class:`DeadAnchors`: after each step, count idle steps per anchor and re-seed dead ones; the epoch's
  count is the ``reseeded`` column of metrics.csv.
* :class:`NeighbourViews`: each epoch, mine every training sample's k nearest training samples (latent
  or input space); batches then carry ``x_nb``, one of them per sample, drawn from (seed, epoch, step).
"""

from __future__ import annotations

from typing import Any

import torch

from nebula.latent.anchors import squared_distances
from nebula.train import distributed
from nebula.train.callbacks import Callback


class AnchorPlacement(Callback):
    """Places ``model.anchors`` at the start of epoch ``model.pretrain_epochs`` (when not yet placed)."""

    def on_epoch_start(self, trainer: Any, epoch: int, resumed: bool) -> None:
        model = trainer.model
        if resumed or model.anchors is None or bool(model.anchors_ready) or epoch < model.pretrain_epochs:
            return
        msg = None
        if trainer.rank == 0:  # e.g. a t-SNE placement: once, then broadcast
            mu = trainer.embed(trainer.train_index)
            inputs = trainer.x[trainer.train_index] if model.anchor_init == "tsne" else None
            how = model.anchors.place(mu, model.anchor_init, trainer.generator, inputs)
            model.anchors_ready.fill_(True)
            msg = f"anchors placed at epoch {epoch}: {how}"
        changed = torch.tensor([1.0 if msg else 0.0], device=trainer.device)
        if trainer.world_size > 1 and distributed.all_reduce_max(changed)[0] > 0:
            distributed.broadcast_module(model)
        if msg:
            trainer.log(msg)
            trainer.history.messages.append(msg)


class DeadAnchors(Callback):
    """Dead-anchor bookkeeping after every step; adds the epoch's ``reseeded`` count to its row."""

    def __init__(self) -> None:
        self.count = 0

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
