"""Export a trained model folder into a bundle (weights + card only), adding notes to the card."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from gabaapp.models.card import CARD_NAME, WEIGHTS_NAME, load_model


def export_model(
    run_dir: str | Path, dest_dir: str | Path, model_id: str, card_updates: dict[str, Any]
) -> Path:
    """Copy weights.safetensors and card.json of `run_dir` to `dest_dir` (created), set the
    card's `id` and merge `card_updates` (lists such as `limitations` are extended, other keys
    replaced); verify the result loads. Return `dest_dir`."""
    run_dir, dest_dir = Path(run_dir), Path(dest_dir)
    load_model(run_dir)  # refuses a tampered or mismatched source before anything is copied
    card = json.loads((run_dir / CARD_NAME).read_text())
    card["id"] = model_id
    for key, value in card_updates.items():
        if isinstance(value, list) and isinstance(card.get(key), list):
            card[key] = card[key] + value
        else:
            card[key] = value
    dest_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(run_dir / WEIGHTS_NAME, dest_dir / WEIGHTS_NAME)
    (dest_dir / CARD_NAME).write_text(json.dumps(card, indent=2) + "\n")
    load_model(dest_dir)
    return dest_dir
