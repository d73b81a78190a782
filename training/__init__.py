"""Reproduction of GHOST's two-stage training."""
