"""Quantifier networks (YAE, CNN, FCNN), model cards and inference (torch)."""
