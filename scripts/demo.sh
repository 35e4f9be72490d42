#!/usr/bin/env bash
# gabaapp demo: simulate a small MEGA-PRESS phantom BIDS dataset, then run the BIDS-App on it
# (participant level, then group level) and print where the reports are.
# Usage: scripts/demo.sh OUTDIR   (called by `make demo`; about a minute on 2 CPU cores)
#
# The dataset is SYNTHETIC: no public raw MEGA-PRESS spectra could be obtained, so
# `gabaapp simulate bids` writes raw multi-coil, multi-transient NIfTI-MRS files (with water
# references, drift, phase jitter, a few corrupted transients, eddy currents, residual water,
# macromolecules and noise) from gabaapp's own density-matrix simulation, with sidecars modelled
# on the real Big GABA ones and the true concentrations in participants.tsv (--phantom).
set -euo pipefail

OUTDIR=${1:?usage: scripts/demo.sh OUTDIR}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${GABAAPP_BIN:-$HERE/.venv/bin}
MODELS=${GABAAPP_DEMO_MODELS:-yae lcm}

mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
rm -rf "$OUTDIR/bids" "$OUTDIR/derivatives" "$OUTDIR/work"

echo "== 1/3 gabaapp simulate bids $OUTDIR/bids --phantom (SYNTHETIC data: no public raw MEGA-PRESS data exist)"
"$BIN/gabaapp" simulate bids "$OUTDIR/bids" --n-participants 4 --phantom --seed 2026 \
    --n-coils 8 --n-transients 64

echo "== 2/3 gabaapp $OUTDIR/bids $OUTDIR/derivatives participant --model $MODELS"
# shellcheck disable=SC2086  # MODELS is a word list on purpose
"$BIN/gabaapp" "$OUTDIR/bids" "$OUTDIR/derivatives" participant -w "$OUTDIR/work" --model $MODELS

echo "== 3/3 gabaapp $OUTDIR/bids $OUTDIR/derivatives group"
"$BIN/gabaapp" "$OUTDIR/bids" "$OUTDIR/derivatives" group

echo
echo "Input dataset (synthetic phantoms): $OUTDIR/bids (true concentrations in participants.tsv)"
echo "Participant reports:                $OUTDIR/derivatives/sub-*.html"
echo "Group report:                       $OUTDIR/derivatives/group.html"
echo "Group tables:                       $OUTDIR/derivatives/group_concentrations.tsv, group_qc.tsv, group_accuracy.tsv"
