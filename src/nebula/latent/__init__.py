"""Latent heads and latent-space loss terms (each a small module with the equation it implements)."""
