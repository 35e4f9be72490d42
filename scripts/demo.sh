#!/usr/bin/env bash
# gabaapp demo: generate a small synthetic MEGA-PRESS BIDS dataset, then run the BIDS-App on it.
# Usage: scripts/demo.sh OUTDIR   (called by `make demo`; takes well under a minute)
#
# The dataset is SYNTHETIC: no public raw MEGA-PRESS spectra could be obtained (the Big GABA
# spectra on NITRC are not openly downloadable), so gabaapp.testing writes NIfTI-MRS files with
# NAA/Cr/Cho lines, an edited GABA-like triplet in edit-ON only, coils, transients and noise,
# with sidecars modelled on the real Big GABA ones.
set -euo pipefail

OUTDIR=${1:?usage: scripts/demo.sh OUTDIR}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${GABAAPP_BIN:-$HERE/.venv/bin}
PY=$BIN/python

mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
rm -rf "$OUTDIR/bids" "$OUTDIR/derivatives"

echo "== 1/3 generating a synthetic MEGA-PRESS BIDS dataset in $OUTDIR/bids"
echo "   (synthetic: no public raw MEGA-PRESS data exist to download)"
"$PY" - "$OUTDIR/bids" <<'PYEOF'
import sys

import numpy as np

from gabaapp.testing import write_bids_dataset

root = sys.argv[1]
rng = np.random.default_rng(2026)
# Two subjects as spec2nii writes Siemens/GE data (EditCondition ["ON","OFF"]), one session
# each, and a third as UIH writes it (["OFF","ON"]): all load to the same OFF/ON order.
write_bids_dataset(root, rng, subjects=("01", "02"), sessions=("1",), n_coils=8, n_transients=16)
write_bids_dataset(
    root, rng, subjects=("03",), sessions=("1",), n_coils=8, n_transients=16,
    edit_condition=("OFF", "ON"), reference_uri=True,
)
with open(f"{root}/participants.tsv", "w") as f:
    f.write("participant_id\nsub-01\nsub-02\nsub-03\n")
PYEOF

echo "== 2/3 gabaapp $OUTDIR/bids $OUTDIR/derivatives participant"
"$BIN/gabaapp" "$OUTDIR/bids" "$OUTDIR/derivatives" participant

echo "== 3/3 gabaapp $OUTDIR/bids $OUTDIR/derivatives group"
"$BIN/gabaapp" "$OUTDIR/bids" "$OUTDIR/derivatives" group

echo
echo "Input dataset:   $OUTDIR/bids"
echo "Derivatives:     $OUTDIR/derivatives (dataset_description.json, per-scan summaries,"
echo "                 group_inputs.tsv)"
