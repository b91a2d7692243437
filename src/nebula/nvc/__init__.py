"""Nebula Variational Coding (docs/methods.md section 1): the model, its latent terms as a reusable
module (:class:`NebulaLoss`) and its training callbacks."""

from nebula.nvc.loss import NebulaLoss, NebulaTerms

__all__ = ["NebulaLoss", "NebulaTerms"]
