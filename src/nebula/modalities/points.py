"""Point clouds (N, P, 3): PointNet encoder, folding decoder, Chamfer reconstruction; 3D metrics."""

from __future__ import annotations

from nebula.modalities.record import Modality, register_modality
from nebula.nn.folding import DEFAULT_DECODER_HIDDEN, DEFAULT_FOLD_HIDDEN
from nebula.nn.pointnet import DEFAULT_POINT_CHANNELS

POINTS = register_modality(Modality(
    "points", encoder="pointnet", decoder="folding", reconstruction="chamfer",
    model_defaults={"point_channels": DEFAULT_POINT_CHANNELS, "point_decoder_hidden": DEFAULT_DECODER_HIDDEN,
                    "fold_hidden": DEFAULT_FOLD_HIDDEN},
    evaluators=("geometry",), renderer="points"))
