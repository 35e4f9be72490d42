"""`gabaapp train` end to end in-process on a small Lorentzian basis file, plus option errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gabaapp.cli.run import main
from gabaapp.cli.train import build_train_parser, configs_from
from gabaapp.constants import METABOLITES
from gabaapp.spectra import Acquisition, Basis

# Singlet positions (ppm) standing in for the metabolites; GABA/Glx/Gln "edited" in ON.
PEAKS_PPM = {"Cr": 3.02, "GABA": 3.0, "Gln": 2.45, "Glu": 2.35, "NAA": 2.01}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture()
def basis_file(tmp_path):
    physics_basis = pytest.importorskip("gabaapp.physics.basis")
    acq = Acquisition(f0_mhz=123.23, dwell_s=1 / 2000, n_points=2048, centre_ppm=4.65)
    t = acq.time_axis()
    off = np.array(
        [np.exp(2j * np.pi * (PEAKS_PPM[m] - acq.centre_ppm) * acq.f0_mhz * t) for m in METABOLITES]
    )
    on = off * np.array([1.0, 0.0, 0.5, 0.5, 1.0])[:, None]
    basis = Basis(METABOLITES, off, on, acq, "lorentz-test")
    return physics_basis.save_basis(basis, tmp_path / "basis.npz")


def test_train_cli_end_to_end(tmp_path, basis_file):
    out = tmp_path / "model"
    args = [
        "train", str(out), "--model", "cnn", "--preset", "cnn_cpu", "--basis", str(basis_file),
        "--n-train", "64", "--n-val", "32", "--epochs", "1", "--batch-size", "16",
        "--no-progress", "--seed", "3",
    ]  # fmt: skip
    assert main(args) == 0
    card = json.loads((out / "card.json").read_text())
    assert card["model"] == "cnn" and card["training"]["seed"] == 3
    assert card["basis"]["sequence_hashes"] == ["lorentz-test"]
    assert card["valid_for"]["f0_mhz"] == [123.23]
    assert card["synthesis"]["sampler"] == "sobol"
    assert card["command"].startswith("gabaapp train ") and "--seed 3" in card["command"]
    assert (out / "metrics_val.tsv").is_file() and (out / "history.tsv").is_file()
    # Same OUT_DIR without --resume: usage error (exit 64), nothing overwritten.
    assert main(args) == 64
    # --resume with another architecture: refused.
    assert main([*args, "--resume", "--preset", "cnn_small"]) == 64


def test_config_file_and_flags(tmp_path):
    toml = tmp_path / "train.toml"
    toml.write_text(
        '[train]\nmodel = "yae"\nn_train = 5000\nbatch_size = 32\n'
        '[model]\npreset = "yae_paper"\nunits = 256\n'
        '[synthesis]\npreset = "paper"\nsampler = "uniform"\n'
        "[synthesis.augmentation]\nlorentz_hz = [2.0, 10.0]\n"
        '[basis]\nsequence_presets = ["siemens", "ge"]\n'
    )
    args = build_train_parser().parse_args(["out", "--config", str(toml), "--n-train", "100"])
    import tomllib

    cfg, mcfg, synth, basis = configs_from(args, tomllib.loads(toml.read_text()))
    assert cfg.model == "yae" and cfg.n_train == 100 and cfg.batch_size == 32
    assert mcfg.units == 256
    assert synth.sampler == "uniform" and synth.augmentation.lorentz_hz == (2.0, 10.0)
    assert synth.augmentation.shift_hz == (0.0, 0.0)  # paper preset: no frequency shifts
    assert basis["sequence_presets"] == ["siemens", "ge"]


def test_bad_options_exit_codes(tmp_path, capsys):
    toml = tmp_path / "bad.toml"
    toml.write_text("[train]\nbogus = 1\n")
    assert main(["train", str(tmp_path / "o"), "--config", str(toml)]) == 64
    assert "bogus" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "o"), "--config", str(tmp_path / "none.toml")]) == 66
    assert main(["train", str(tmp_path / "o"), "--model", "mlp"]) == 64
    assert (
        main(["train", "validate", "x"]) == 64
    )  # neither a model folder nor a BIDS dataset: usage error
    if not torch.cuda.is_available():
        assert main(["train", str(tmp_path / "o"), "--device", "cuda"]) == 64


def test_select_cli_with_sqlite_storage(tmp_path, basis_file):
    space = tmp_path / "space.toml"
    space.write_text(
        'model = "cnn"\npreset = "cnn_cpu"\n[space]\nf1 = [4, 8]\nf2 = 8\ndense = [16, 32]\n'
    )
    db = f"sqlite:///{tmp_path / 'study.db'}"
    args = [
        "train", "select", str(tmp_path / "sel"), "--space", str(space), "--basis",
        str(basis_file), "--storage", db, "--n-trials", "2", "--folds", "2",
        "--n-spectra", "48", "--epochs", "1", "--batch-size", "8", "--no-progress",
    ]  # fmt: skip
    assert main(args) == 0
    best = json.loads((tmp_path / "sel" / "selection_best.json").read_text())
    assert best["architecture"]["f2"] == 8 and best["architecture"]["f1"] in (4, 8)
    assert (tmp_path / "sel" / "selection_trials.tsv").read_text().count("\n") == 3
    bad = [*args[:8], "--storage", "sqlite:////nonexistent/dir/x.db", *args[10:]]
    assert main(bad) == 64


def test_bundled_configs_parse():
    import tomllib
    from importlib import resources

    from gabaapp.training.select import load_search_space

    folder = resources.files("gabaapp") / "data" / "configs"
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".toml"))
    assert {"yae_cpu.toml", "cnn_cpu.toml", "select_cnn.toml"} <= set(names)
    for name in names:
        path = folder / name
        if name.startswith("select_"):
            assert load_search_space(path).choices
        else:
            args = build_train_parser().parse_args(["out", "--config", str(path)])
            cfg, mcfg, synth, basis = configs_from(args, tomllib.loads(path.read_text()))
            assert cfg.model in name and basis["sequence_presets"]


def test_init_from_a_bundled_model_fine_tunes_it(tmp_path, basis_file, capsys):
    from gabaapp.pipeline import bundled_model_dir

    options = [
        "--init-from", "cnn-v2", "--basis", str(basis_file), "--n-train", "32", "--n-val", "16",
        "--epochs", "1", "--batch-size", "16", "--no-progress",
    ]  # fmt: skip
    assert main(["train", str(tmp_path / "tuned"), *options]) == 0
    card = json.loads((tmp_path / "tuned" / "card.json").read_text())
    bundled = json.loads((bundled_model_dir("cnn-v2") / "card.json").read_text())
    assert card["model"] == "cnn" and card["architecture"] == bundled["architecture"]
    assert card["initialised_from"]["id"] == "cnn-v2"
    assert card["initialised_from"]["weights_sha256"] == bundled["weights"]["sha256"]
    # The architecture comes from the card: another preset or family is a usage error.
    assert main(["train", str(tmp_path / "b"), *options, "--preset", "cnn_paper"]) == 64
    assert main(["train", str(tmp_path / "c"), *options, "--model", "yae"]) == 64
    missing = str(tmp_path / "nothing" / "here")
    assert main(["train", str(tmp_path / "d"), "--init-from", missing]) == 66
    assert "no card.json" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "e"), "--init-from", "lcm"]) == 64  # no weights
    assert "has no weights" in capsys.readouterr().err
