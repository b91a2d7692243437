"""Tabular data (N, F) float32, standardised per feature by its loader (e.g. :mod:`nebula.data.mat`): MLP
encoder and decoder, MSE reconstruction, no augmentation, anchors placed on a t-SNE map of the inputs
(whose parts label the anchor terms, docs/clustering.md); no data-space renderer."""

from __future__ import annotations

from nebula.modalities.record import Modality, register_modality

TABULAR = register_modality(Modality("tabular", encoder="mlp", decoder="auto", reconstruction="mse", anchor_init="tsne"))
