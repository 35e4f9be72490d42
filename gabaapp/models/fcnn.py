"""FCNN ("FoundationalCNN") of Hatami, Sdika & Ratiney (2018, arXiv:1806.07237) as used in
paper-notes §4.4: five blocks of Conv1D(k=3, same) -> CReLU (concat ReLU(x), ReLU(-x), which
doubles the channels) -> MaxPool(2), then Dense(1024, ReLU) -> Dropout(0.5) -> Dense(5, linear).
The input channels are rows of the network input (default OFF-real, ON-real as in the paper).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from gabaapp.constants import GRID_POINTS, GRID_ROWS, METABOLITES


@dataclass(frozen=True)
class FCNNConfig:
    """FCNN hyper-parameters; defaults reproduce the paper's FCNN (~67 M parameters)."""

    n_rows: int = len(GRID_ROWS)
    n_points: int = GRID_POINTS
    n_outputs: int = len(METABOLITES)
    rows: tuple[int, ...] = (1, 3)  # input rows used as channels: OFF-real, ON-real
    filters: tuple[int, ...] = (32, 64, 128, 256, 512)
    kernel: int = 3
    dense: int = 1024
    dropout: float = 0.5

    def __post_init__(self) -> None:
        object.__setattr__(self, "rows", tuple(int(r) for r in self.rows))
        object.__setattr__(self, "filters", tuple(int(f) for f in self.filters))
        if not self.rows or any(not 0 <= r < self.n_rows for r in self.rows):
            raise ValueError(f"rows {self.rows} must index the {self.n_rows} input rows")
        if not self.filters or self.n_points % 2 ** len(self.filters):
            raise ValueError("n_points must be divisible by 2**len(filters)")
        if self.kernel % 2 == 0:
            raise ValueError("kernel must be odd ('same' padding)")


class FCNN(nn.Module):
    """`forward(x [N, rows, points]) -> concentrations [N, n_outputs]`."""

    def __init__(self, config: FCNNConfig):
        super().__init__()
        self.config = c = config
        # The reference implementation zero-pads one channel to two (paper-notes §4.4).
        c_in = max(len(c.rows), 2)
        self.convs = nn.ModuleList()
        for f in c.filters:
            self.convs.append(nn.Conv1d(c_in, f, c.kernel, padding=c.kernel // 2))
            c_in = 2 * f
        width = c.n_points // 2 ** len(c.filters)
        self.head = nn.Sequential(
            nn.Flatten(1),
            nn.Linear(c_in * width, c.dense),
            nn.ReLU(),
            nn.Dropout(c.dropout),
            nn.Linear(c.dense, c.n_outputs),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x[:, list(self.config.rows)]
        if h.shape[1] == 1:
            h = torch.cat([h, torch.zeros_like(h)], dim=1)
        for conv in self.convs:
            h = conv(h)
            h = F.max_pool1d(torch.cat([F.relu(h), F.relu(-h)], dim=1), 2)
        return self.head(h)

    def loss(
        self, x: torch.Tensor, clean: torch.Tensor, target: torch.Tensor, epoch: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (MSE loss on the sum-normalised targets, predicted concentrations)."""
        q = self.forward(x)
        return F.mse_loss(q.float(), target), q
