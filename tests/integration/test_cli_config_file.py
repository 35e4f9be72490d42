"""`--config-file`: [preproc] and [lcm] tables reach the pre-processing and the LCM fit."""

from __future__ import annotations

import json

import numpy as np

from gabaapp.cli.run import main
from gabaapp.testing import write_bids_dataset


def _dataset(tmp_path):
    root = tmp_path / "bids"
    write_bids_dataset(root, np.random.default_rng(3), subjects=("01",), n_coils=2, n_transients=4)
    return root


def test_config_file_options_are_applied(tmp_path, capsys):
    bids = _dataset(tmp_path)
    cfg = tmp_path / "gabaapp.toml"
    cfg.write_text('[preproc]\nalign_method = "sr"\noutlier_z = 2.5\n\n[lcm]\ninclude_mm = true\n')
    out = tmp_path / "out"
    code = main([str(bids), str(out), "participant", "--model", "lcm", "--config-file", str(cfg)])
    assert code == 0, capsys.readouterr().err
    (sidecar,) = out.glob("sub-01/mrs/*_desc-lcm_concentrations.json")
    meta = json.loads(sidecar.read_text())
    assert meta["Preprocessing"]["align_method"] == "sr"
    assert meta["Preprocessing"]["outlier_z"] == 2.5
    (table,) = out.glob("sub-01/mrs/*_desc-lcm_concentrations.tsv")
    # with macromolecules modelled, the LCM reports GABA, not GABA+
    assert "\tGABA\t" in table.read_text() and "GABA+" not in table.read_text()


def test_unknown_option_is_a_one_line_usage_error(tmp_path, capsys):
    bids = _dataset(tmp_path)
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[preproc]\nalign_metod = 'sr'\n")
    out = tmp_path / "out"
    code = main([str(bids), str(out), "participant", "--config-file", str(cfg)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 64 and len(err) == 1 and "align_metod" in err[0]
    assert not out.exists()
