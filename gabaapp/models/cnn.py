"""The parameterised MRSNet CNN family (Ma et al., arXiv:2602.20289; paper-notes §4.2).

The input [N, rows, points] is a one-channel image (rows x points). Conv blocks use valid 2-D
convolutions: two (1, k) blocks along frequency, then (min(rows, 3), C3) blocks until one row
is left (mixing the spectrum rows), then 8 (1, C4) blocks, flatten, Dense(D, sigmoid),
Dropout(O2), Dense(5, ACT). Stride codes: s > 0 -> stride s; s < 0 -> stride 1 then max-pool
by |s| (-1 = no pooling).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from gabaapp.constants import GRID_POINTS, GRID_ROWS, METABOLITES
from gabaapp.models.layers import check_activation, make_activation


@dataclass(frozen=True)
class CNNConfig:
    """Hyper-parameters `cnn_S1_S2_C1_C2_C3_C4_O1_O2_F1_F2_D_ACT`; defaults are the paper's
    Bayesian-optimised CNN `cnn_-1_-3_9_9_5_3_0.0_0.3_512_512_2048_sigmoid`."""

    n_rows: int = len(GRID_ROWS)
    n_points: int = GRID_POINTS
    n_outputs: int = len(METABOLITES)
    s1: int = -1
    s2: int = -3
    c1: int = 9
    c2: int = 9
    c3: int = 5
    c4: int = 3
    o1: float = 0.0  # conv dropout; 0 -> BatchNorm instead
    o2: float = 0.3  # dense dropout
    f1: int = 512
    f2: int = 512
    dense: int = 2048
    act: str = "sigmoid"

    def __post_init__(self) -> None:
        check_activation(self.act)
        if 0 in (self.s1, self.s2):
            raise ValueError("stride codes must be non-zero (s > 0 stride, s < 0 pool)")
        if min(self.c1, self.c2, self.c3, self.c4, self.f1, self.f2, self.dense) < 1:
            raise ValueError("kernel sizes, filters and dense units must be >= 1")
        if self.feature_width() < 1:
            raise ValueError(f"{self} shrinks the {self.n_points}-point input to nothing")

    def block_plan(self) -> list[tuple[int, int, int, int]]:
        """Return the conv blocks as (filters, kernel_rows, kernel_width, stride_code)."""
        plan = [(self.f1, 1, self.c1, self.s1), (self.f1, 1, self.c2, self.s1)]
        rows = self.n_rows
        while rows > 1:
            kh = min(rows, 3)
            plan.append((self.f1, kh, self.c3, 1))
            rows -= kh - 1
        for f in (self.f1, self.f2):
            plan += [(f, 1, self.c4, 1), (f, 1, self.c4, self.s2)] * 2
        return plan

    def feature_width(self) -> int:
        """Return the width of the last feature map (valid convs, floor pooling)."""
        width = self.n_points
        for _, _, kw, s in self.block_plan():
            # stride s: floor((w - k) / s) + 1; pool |s|: floor((w - k + 1) / |s|)
            width = (width - kw) // s + 1 if s > 0 else (width - kw + 1) // -s
            if width < 1:
                return 0
        return width


class _ConvBlock(nn.Module):
    """Conv2d (valid) -> BatchNorm if dropout == 0 -> ReLU -> Dropout -> MaxPool if s < 0."""

    def __init__(self, c_in: int, c_out: int, kh: int, kw: int, s: int, dropout: float):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, (kh, kw), stride=(1, s) if s > 0 else 1)
        self.bn = nn.BatchNorm2d(c_out) if dropout == 0 else nn.Identity()
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.pool = -s if s < -1 else 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(F.relu(self.bn(self.conv(x))))
        return F.max_pool2d(x, (1, self.pool)) if self.pool > 1 else x


class CNN(nn.Module):
    """MRSNet CNN: `forward(x [N, rows, points]) -> concentrations [N, n_outputs]`."""

    def __init__(self, config: CNNConfig):
        super().__init__()
        self.config = c = config
        blocks, c_in = [], 1
        for f, kh, kw, s in c.block_plan():
            blocks.append(_ConvBlock(c_in, f, kh, kw, s, c.o1))
            c_in = f
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.Flatten(1),
            nn.Linear(c.f2 * c.feature_width(), c.dense),
            nn.Sigmoid(),
            nn.Dropout(c.o2),
            nn.Linear(c.dense, c.n_outputs),
            make_activation(c.act),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x.unsqueeze(1)))

    def loss(
        self, x: torch.Tensor, clean: torch.Tensor, target: torch.Tensor, epoch: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (MSE loss on the sum-normalised targets, predicted concentrations)."""
        q = self.forward(x)
        return F.mse_loss(q.float(), target), q
