"""Voxel grids (N, 1, D, H, W): 3D conv encoder and decoder, voxel BCE reconstruction; IoU metrics."""

from __future__ import annotations

from nebula.modalities.record import Modality, register_modality

VOXELS = register_modality(Modality(
    "voxels", encoder="conv", decoder="conv", reconstruction="voxel_bce", evaluators=("geometry",), renderer="voxels",
    # the conv widths voxels trained with before the generic default became images' [16, 32, 64]
    config_defaults={"model": {"channels": [32, 64, 128]}}))
