"""Small building blocks shared by the quantifier networks: activations by name."""

from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear", "softmax", "leakyrelu")


def make_activation(name: str) -> nn.Module:
    """Return the activation module called `name` (one of ACTIVATIONS; 'leakyrelu' or
    'leakyrelu0.3' for a given negative slope). Softmax acts on the last axis."""
    if name.startswith("leakyrelu"):
        slope = float(name[len("leakyrelu") :] or 0.3)  # Keras' default slope is 0.3
        return nn.LeakyReLU(slope)
    table = {
        "tanh": nn.Tanh,
        "relu": nn.ReLU,
        "sigmoid": nn.Sigmoid,
        "linear": nn.Identity,
        "softmax": lambda: nn.Softmax(dim=-1),
    }
    if name not in table:
        raise ValueError(f"unknown activation {name!r}; choose from {ACTIVATIONS}")
    return table[name]()


def check_activation(name: str) -> None:
    """Raise ValueError when `name` is not an activation `make_activation` knows."""
    if name.startswith("leakyrelu"):
        float(name[len("leakyrelu") :] or 0.3)
        return
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose from {ACTIVATIONS}")


class RowBatchNorm(nn.Module):
    """BatchNorm over the last (feature) axis of a [..., features] tensor, statistics pooled over
    all leading axes (Keras BatchNormalization(axis=-1) on a per-row Dense output)."""

    def __init__(self, n_features: int):
        super().__init__()
        self.bn = nn.BatchNorm1d(n_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        return self.bn(x.reshape(-1, shape[-1])).reshape(shape)
