"""Weights (safetensors) + model card (card.json): saving, verified loading.

A model directory holds `weights.safetensors` and `card.json`. The card carries everything to
rebuild the network (model name + full architecture config), the input spec it expects, how it
was trained, its metrics, the sha256 of the weights, licence, citation, intended use and
limitations. Loading never unpickles: safetensors only, after checking the sha256 in the card.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from gabaapp.__about__ import __version__
from gabaapp.atomic import write_bytes_atomic
from gabaapp.constants import GRID_POINTS, GRID_PPM_HIGH, GRID_PPM_LOW, GRID_ROWS, METABOLITES
from gabaapp.errors import DataError, NoInputError
from gabaapp.models.registry import build_model, config_to_dict, n_parameters

logger = logging.getLogger(__name__)

CARD_NAME = "card.json"
WEIGHTS_NAME = "weights.safetensors"
CARD_FORMAT = 1

CITATION = (
    "Z. Ma, S. M. Shermer, O. Karakus, F. C. Langbein, 'The Sim-to-Real Gap in MRS Quantification: "
    "A Systematic Deep Learning Validation for GABA', arXiv:2602.20289 (2026)"
)
INTENDED_USE = (
    "Research use only: relative quantification of Cr, GABA, Gln, Glu and NAA from edit-OFF and "
    "edit-ON MEGA-PRESS spectra at 3 T, preprocessed by gabaapp.preproc.features.network_input. "
    "Not a medical device; not for diagnosis."
)
LIMITATIONS = [
    "Trained only on simulated spectra: accuracy on measured data (sim-to-real gap) can be much "
    "worse than on simulated test sets.",
    "Outputs are relative concentrations (trained with sum-normalised targets); no absolute mM.",
    "Macromolecule, lipid and residual-water contamination are modelled only as far as the "
    "simulator's augmentation describes them.",
]


def input_spec() -> dict[str, Any]:
    """Return the network input this version of gabaapp produces (compared with model cards)."""
    return {
        "rows": list(GRID_ROWS),
        "n_points": GRID_POINTS,
        "ppm_first": GRID_PPM_LOW,
        "ppm_last": GRID_PPM_HIGH,
        "ppm_order": "ascending",
        "scaling": "max |edit-OFF| in the window",
        "alignment": "B0 to NAA 2.01 / Cr 3.015 ppm",
        "dtype": "float32",
    }


def output_spec() -> dict[str, Any]:
    """Return the description of the network output."""
    return {
        "metabolites": list(METABOLITES),
        "target_normalisation": "sum",
        "evaluation_normalisation": "max (per spectrum, truth and prediction separately)",
    }


def sha256_bytes(data: bytes) -> str:
    """Return the hex sha256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def save_model(
    model_dir: str | Path, name: str, model: nn.Module, card_fields: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Write `model`'s weights and its card to `model_dir`; return the card.

    `card_fields` adds or overrides card entries (training, basis, metrics, valid_for, ...).
    """
    model_dir = Path(model_dir)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    blob = save_safetensors(state, metadata={"format": "pt", "model": name})
    card: dict[str, Any] = {
        "card_format": CARD_FORMAT,
        "model": name,
        "architecture": config_to_dict(model.config),
        "n_parameters": n_parameters(model),
        "input": input_spec(),
        "output": output_spec(),
        "weights": {"file": WEIGHTS_NAME, "sha256": sha256_bytes(blob), "bytes": len(blob)},
        "gabaapp_version": __version__,
        "licence": "MIT",
        "citation": CITATION,
        "intended_use": INTENDED_USE,
        "limitations": list(LIMITATIONS),
    }
    card.update(card_fields or {})
    write_bytes_atomic(model_dir / WEIGHTS_NAME, blob)
    write_bytes_atomic(model_dir / CARD_NAME, (json.dumps(card, indent=2) + "\n").encode())
    return card


def read_card(model_dir: str | Path) -> dict[str, Any]:
    """Return the parsed card.json of `model_dir`; NoInputError/DataError when missing/broken."""
    path = Path(model_dir) / CARD_NAME
    if not path.is_file():
        raise NoInputError(f"no model card at {path}; pass a folder holding {CARD_NAME}")
    try:
        card = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise DataError(f"cannot read model card {path}: {err}") from err
    missing = [k for k in ("model", "architecture", "input", "weights") if k not in card]
    if missing:
        raise DataError(f"model card {path} lacks {missing}; it was not written by gabaapp")
    return card


def check_card(
    card: dict[str, Any], *, sequence_hash: str | None = None, where: str = "model"
) -> None:
    """Raise DataError when the card's input grid differs from this gabaapp's network input, or
    when `sequence_hash` is given and is not among the basis hashes the model was trained on."""
    expected = input_spec()
    got = card.get("input", {})
    diff = {k: (got.get(k), v) for k, v in expected.items() if got.get(k) != v}
    if diff:
        details = "; ".join(f"{k}: card {a!r} vs expected {b!r}" for k, (a, b) in diff.items())
        raise DataError(
            f"{where} expects a different input grid ({details}); use a model trained for this "
            "gabaapp version or retrain it"
        )
    if sequence_hash is not None:
        hashes = card.get("basis", {}).get("sequence_hashes", [])
        if sequence_hash not in hashes:
            raise DataError(
                f"{where} was trained on basis sets {hashes}, not on basis {sequence_hash}; "
                "retrain it for this sequence or pick a matching model"
            )


def load_model(
    model_dir: str | Path,
    *,
    device: str | torch.device = "cpu",
    sequence_hash: str | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Return (model in eval mode on `device`, card) from `model_dir`.

    Verifies the sha256 of the weights against the card, the input grid and, when given, the
    basis `sequence_hash`; raises DataError (tampered/mismatched) or NoInputError (missing).
    """
    model_dir = Path(model_dir)
    card = read_card(model_dir)
    check_card(card, sequence_hash=sequence_hash, where=f"model {model_dir}")
    path = model_dir / card["weights"].get("file", WEIGHTS_NAME)
    if not path.is_file():
        raise NoInputError(f"model weights {path} are missing")
    blob = path.read_bytes()
    digest = sha256_bytes(blob)
    if digest != card["weights"].get("sha256"):
        raise DataError(
            f"weights {path} do not match the sha256 in {CARD_NAME} (got {digest[:12]}..., card "
            f"{str(card['weights'].get('sha256'))[:12]}...): the file is corrupt or was altered; "
            "re-download the model or retrain it"
        )
    try:
        # Build on the meta device (no random init: loading is 2-3x faster), then adopt the
        # loaded tensors; strict=True refuses missing or unexpected entries.
        with torch.device("meta"):
            model = build_model(card["model"], card["architecture"])
        state = load_safetensors(blob)
        model.load_state_dict(state, strict=True, assign=True)
        if any(t.is_meta for t in (*model.parameters(), *model.buffers())):
            raise ValueError("the weights file lacks some tensors")
    except (ValueError, TypeError, RuntimeError, SafetensorError) as err:
        raise DataError(f"model {model_dir} cannot be rebuilt from its card: {err}") from err
    return model.to(device).eval(), card
