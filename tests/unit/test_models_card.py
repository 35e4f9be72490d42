"""Weights + model card: round trip, checksum, grid and basis checks, no pickle."""

from __future__ import annotations

import json

import pytest
import torch

from gabaapp.errors import DataError, NoInputError
from gabaapp.models.card import CARD_NAME, WEIGHTS_NAME, load_model, save_model
from gabaapp.models.registry import build_model, model_config


@pytest.fixture()
def saved(tmp_path):
    torch.manual_seed(1)
    cfg = model_config("cnn", "cnn_cpu", f1=4, f2=4, dense=8)
    model = build_model("cnn", cfg).eval()
    card = save_model(
        tmp_path / "m", "cnn", model, {"basis": {"sequence_hashes": ["abc123"]}, "metrics": {}}
    )
    return tmp_path / "m", model, card


def test_round_trip_rebuilds_from_card_alone(saved):
    model_dir, model, card = saved
    assert (model_dir / WEIGHTS_NAME).is_file() and card["weights"]["sha256"]
    on_disk = json.loads((model_dir / CARD_NAME).read_text())
    assert on_disk["architecture"]["f1"] == 4 and on_disk["model"] == "cnn"
    for key in ("licence", "citation", "intended_use", "limitations", "input", "output"):
        assert key in on_disk
    loaded, card2 = load_model(model_dir, sequence_hash="abc123")
    assert not loaded.training
    x = torch.randn(3, 4, 2048)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))


def test_tampered_weights_are_refused(saved):
    model_dir, _, _ = saved
    path = model_dir / WEIGHTS_NAME
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(DataError, match="sha256"):
        load_model(model_dir)


def test_mismatched_grid_is_refused(saved):
    model_dir, _, card = saved
    card["input"]["n_points"] = 1024
    (model_dir / CARD_NAME).write_text(json.dumps(card))
    with pytest.raises(DataError, match="n_points"):
        load_model(model_dir)


def test_wrong_basis_hash_is_refused(saved):
    model_dir, _, _ = saved
    with pytest.raises(DataError, match="basis"):
        load_model(model_dir, sequence_hash="other")


def test_missing_card_and_foreign_card(tmp_path, saved):
    with pytest.raises(NoInputError):
        load_model(tmp_path / "nowhere")
    model_dir, _, _ = saved
    (model_dir / CARD_NAME).write_text(json.dumps({"hello": 1}))
    with pytest.raises(DataError, match="not written by gabaapp"):
        load_model(model_dir)


def test_architecture_not_matching_weights_is_refused(saved):
    model_dir, _, card = saved
    card["architecture"]["dense"] = 16  # weights were saved for dense=8
    (model_dir / CARD_NAME).write_text(json.dumps(card))
    with pytest.raises(DataError, match="cannot be rebuilt"):
        load_model(model_dir)


def test_weights_file_is_not_a_pickle(saved):
    model_dir, _, _ = saved
    head = (model_dir / WEIGHTS_NAME).read_bytes()[:16]
    assert not head.startswith(b"\x80")  # pickle protocol marker
    assert not head.startswith(b"PK")  # torch.save zip archive


def test_export_bundle_adds_notes_and_still_loads(tmp_path, saved):
    from gabaapp.training.export import export_model

    model_dir, model, card = saved
    dest = export_model(
        model_dir,
        tmp_path / "bundle" / "cnn-x",
        "cnn-x",
        {"limitations": ["sized for CPU"], "command": "gabaapp train ..."},
    )
    out = json.loads((dest / CARD_NAME).read_text())
    assert out["id"] == "cnn-x" and out["command"] == "gabaapp train ..."
    assert out["limitations"][-1] == "sized for CPU" and len(out["limitations"]) > 1
    loaded, _ = load_model(dest)
    x = torch.randn(2, 4, 2048)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))
