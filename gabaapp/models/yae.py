"""The Y-shaped autoencoder (YAE, "caeq"): a denoising autoencoder whose latent code also feeds a
concentration quantifier (Ma, Shermer, Karakus, Langbein, arXiv:2602.20289, §4.3 of
paper-notes).

* Encoder: dense layers acting on the frequency axis of each input row with weights shared
  across rows (2048 -> 1024 -> ... -> latent); no mixing of rows before the quantifier.
* Decoder head: dense layers from the latent back to the clean spectrum of each row.
* Quantifier head: the flattened latent of all rows -> hidden dense layers -> 5 outputs.
* Loss: w_ae * Huber(recon, clean) + w_q * Huber(q, target), w_ae = 1, w_q ramped linearly
  from 0.1 to 1 over the first 25 epochs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from gabaapp.constants import GRID_POINTS, GRID_ROWS, METABOLITES
from gabaapp.models.layers import RowBatchNorm, check_activation, make_activation


@dataclass(frozen=True)
class YAEConfig:
    """Architecture and loss of a YAE; defaults are the paper's deployed model
    `caeq_fc_5_6_tanh_tanh_0.2_384_2_sigmoid_sigmoid_-1.0`.

    Regulariser arguments (`dropout`, `q_dropout`) follow the paper's convention: 0 -> BatchNorm,
    > 0 -> Dropout with that rate, < 0 -> neither.
    """

    n_rows: int = len(GRID_ROWS)
    n_points: int = GRID_POINTS
    n_outputs: int = len(METABOLITES)
    lin: int = 5  # encoder layers (widths n_points, n_points/2, ...)
    lout: int = 6  # decoder layers (widths doubling up to n_points)
    act: str = "tanh"
    act_last: str = "tanh"
    dropout: float = 0.2
    units: int = 384
    layers: int = 2  # quantifier dense layers including the output layer
    q_act: str = "sigmoid"
    q_act_last: str = "sigmoid"
    q_dropout: float = -1.0
    huber_delta: float = 1.0
    q_weight_start: float = 0.1
    q_weight_ramp_epochs: int = 25

    def __post_init__(self) -> None:
        for name in (self.act, self.act_last, self.q_act, self.q_act_last):
            check_activation(name)
        if self.lin < 1 or self.lout < 1 or self.layers < 1:
            raise ValueError("lin, lout and layers must be >= 1")
        if self.n_points % 2 ** max(self.lin - 1, self.lout - 1):
            raise ValueError(f"n_points {self.n_points} is not divisible by 2**(lin-1)/2**(lout-1)")
        if self.units // 2 ** max(self.layers - 2, 0) < 1:
            raise ValueError("units too small for the number of quantifier layers")

    @property
    def latent(self) -> int:
        """Return the width of the per-row latent code."""
        return self.n_points // 2 ** (self.lin - 1)


def _dense_unit(n_in: int, n_out: int, act: str, reg: float) -> nn.Sequential:
    """Dense -> BatchNorm if reg == 0 -> activation -> Dropout if reg > 0 (paper's dense unit)."""
    parts: list[nn.Module] = [nn.Linear(n_in, n_out)]
    if reg == 0:
        parts.append(RowBatchNorm(n_out))
    parts.append(make_activation(act))
    if reg > 0:
        parts.append(nn.Dropout(reg))
    return nn.Sequential(*parts)


def q_weight_at(epoch: int, start: float = 0.1, ramp_epochs: int = 25) -> float:
    """Return the quantifier loss weight at 0-based `epoch`: linear from `start` at epoch 0 to 1
    at epoch `ramp_epochs`, then 1."""
    if ramp_epochs <= 0 or epoch >= ramp_epochs:
        return 1.0
    return start + (1.0 - start) * epoch / ramp_epochs


class YAE(nn.Module):
    """Y-shaped autoencoder. `forward(x)` returns the concentrations [N, n_outputs];
    `forward_both(x)` returns (concentrations, reconstruction [N, n_rows, n_points])."""

    needs_clean = True  # the decoder head is trained on the clean spectrum

    def __init__(self, config: YAEConfig):
        super().__init__()
        self.config = c = config
        enc: list[nn.Module] = []
        width = c.n_points
        for i in range(c.lin):
            out = c.n_points // 2**i
            last = i == c.lin - 1
            enc.append(_dense_unit(width, out, c.act, -1.0 if last else c.dropout))
            width = out
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = []
        for i in range(c.lout):
            out = c.n_points // 2 ** (c.lout - 1 - i)
            last = i == c.lout - 1
            dec.append(_dense_unit(width, out, c.act_last if last else c.act, -1.0))
            width = out
        self.decoder = nn.Sequential(*dec)
        quant: list[nn.Module] = [nn.Flatten(1)]
        width = c.n_rows * c.latent
        for i in range(c.layers - 1):
            out = c.units // 2**i
            quant.append(_dense_unit(width, out, c.q_act, c.q_dropout))
            width = out
        quant.append(_dense_unit(width, c.n_outputs, c.q_act_last, -1.0))
        self.quantifier = nn.Sequential(*quant)

    def forward_both(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (concentrations [N, n_outputs], reconstructed clean input [N, rows, points])."""
        z = self.encoder(x)
        return self.quantifier(z), self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.quantifier(self.encoder(x))

    def loss(
        self, x: torch.Tensor, clean: torch.Tensor, target: torch.Tensor, epoch: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (training loss, predicted concentrations) for one batch at 0-based `epoch`."""
        c = self.config
        q, recon = self.forward_both(x)
        w_q = q_weight_at(epoch, c.q_weight_start, c.q_weight_ramp_epochs)
        loss = F.huber_loss(recon.float(), clean, delta=c.huber_delta) + w_q * F.huber_loss(
            q.float(), target, delta=c.huber_delta
        )
        return loss, q
