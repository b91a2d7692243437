"""Schedules that scale with the run instead of counting optimiser steps.

A run of E epochs with S steps an epoch (S = ceil(n_train / batch)) makes E * S steps; S ranges from 1
(a few hundred samples, batch 256) to hundreds, so anything counted in steps means something else on
every data set. These helpers turn epoch- and fraction-valued options into step counts.
"""

from __future__ import annotations

import math

#: ``train.pretrain_epochs = -1`` (auto): this fraction of ``train.epochs`` trains without the anchor terms.
#: Half the run, as deep clustering pre-trains its autoencoder before it clusters (DEC, N2D): a
#: placement on the latents' map needs latents that learned something (docs/clustering.md)
PRETRAIN_FRACTION = 0.5


def resolve_pretrain_epochs(pretrain_epochs: int, epochs: int) -> tuple[int, str | None]:
    """(warm-up epochs before the anchors are placed, a note when the request was changed).

    ``pretrain_epochs`` -1 means ``floor(PRETRAIN_FRACTION * epochs)``, at least 1 when the run has 2 epochs
    or more (anchors placed on an untrained encoder's latents all sit in one small region). A warm-up that leaves no epoch
    with anchors (``>= epochs``) is shortened to ``epochs - 1`` so the run still places its anchors; the
    note says so (the caller prints it on stderr).
    """
    if pretrain_epochs < 0:
        return (max(1, int(math.floor(PRETRAIN_FRACTION * epochs))) if epochs >= 2 else 0), None
    if pretrain_epochs >= epochs:
        kept = max(epochs - 1, 0)
        return kept, (f"train.pretrain_epochs={pretrain_epochs} leaves no epoch of the {epochs} with anchors: "
                      f"the anchors are placed after {kept} epoch(s) instead")
    return int(pretrain_epochs), None


def dead_after_steps(dead_after_epochs: float, steps_per_epoch: int) -> int:
    """Idle optimiser steps after which an anchor that owned no latent is re-seeded (at least 1)."""
    return max(1, int(math.ceil(float(dead_after_epochs) * max(int(steps_per_epoch), 1))))


#: the smallest batch :func:`resolve_batch_size` shrinks to (batch norm and the metric term need a few samples)
MIN_BATCH = 32


def resolve_batch_size(batch_size: int, n_train: int, epochs: int, min_steps: int) -> int:
    """The batch that gives a run of ``epochs`` over ``n_train`` samples at least ``min_steps`` optimiser steps.

    Small sets make few steps an epoch (320 samples with batch 256: 2), so a run counted in epochs barely
    trains them; the batch shrinks to ``floor(n_train * epochs / min_steps)`` (not below ``MIN_BATCH``, never
    above ``batch_size``). ``min_steps`` 0 keeps ``batch_size``.
    """
    if min_steps <= 0 or n_train <= 0:
        return batch_size
    fit = (n_train * epochs) // min_steps
    return int(min(batch_size, max(MIN_BATCH, fit)))
