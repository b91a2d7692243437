"""Voxel grids (N, 1, D, H, W): 3D conv encoder and decoder, voxel BCE reconstruction; IoU metrics."""

from __future__ import annotations

from nebula.modalities.record import Modality, register_modality

VOXELS = register_modality(Modality(
    "voxels", encoder="conv", decoder="conv", reconstruction="voxel_bce", evaluators=("geometry",), renderer="voxels"))
