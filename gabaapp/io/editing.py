"""Which entry of an edited acquisition is edit-OFF and which is edit-ON.

NIfTI-MRS names the entries of a DIM_EDIT dimension with `dim_N_header.EditCondition`, a list of
keys into the `EditPulse` object (NIfTI-MRS standard v0.9+, Clarke et al., MRM 2022,
doi:10.1002/mrm.29418). spec2nii writes ["ON", "OFF"] for Siemens/GE/Philips MEGA data and
["OFF", "ON"] for UIH; HERMES/HERCULES use "A".."D". When the keys are not literally ON/OFF we
decide from the editing pulse offsets: the condition whose pulse sits near the GABA-editing
frequency (1.9 ppm, Mescher et al., NMR Biomed 1998) is ON.

Units of the offsets: spec2nii's `EditPulse.<cond>.PulseOffset` is in ppm (its GE reader divides
the Hz offset by the MHz frequency; its Siemens reader copies the WIP ppm value) with
`PulseDuration` in seconds; BIDS sidecars use `FrequencyOffset` in ppm with `PulseDuration` in ms.
Both are accepted. An offset outside -10..20 ppm cannot be a ppm value for 1H and is read as Hz
relative to the spectrometer frequency.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from gabaapp.constants import EDIT_ON_PPM
from gabaapp.errors import DataError

log = logging.getLogger(__name__)

# An edit pulse within this distance of EDIT_ON_PPM counts as the ON (editing) pulse.
_ON_TOLERANCE_PPM = 0.5
_PPM_PLAUSIBLE = (-10.0, 20.0)


def unwrap_value(value: object) -> object:
    """Return `value["Value"]` for a user-defined {"Value", "Description"} object, else `value`."""
    if isinstance(value, Mapping) and "Value" in value:
        return value["Value"]
    return value


def pulse_offsets_ppm(pulse: Mapping, f0_mhz: float | None = None) -> list[float]:
    """Return the offsets (ppm) of one EditPulse condition entry.

    Reads `PulseOffset` (spec2nii) or `FrequencyOffset` (BIDS); a list means several pulses
    (HERMES-style conditions). Values outside the plausible 1H ppm range are taken as Hz
    offsets from the spectrometer frequency and converted when `f0_mhz` is known.
    """
    raw = unwrap_value(pulse.get("PulseOffset", pulse.get("FrequencyOffset")))
    if raw is None:
        return []
    values = list(raw) if isinstance(raw, list | tuple) else [raw]
    out = []
    for v in values:
        v = float(v)
        if not (_PPM_PLAUSIBLE[0] <= v <= _PPM_PLAUSIBLE[1]) and f0_mhz:
            # Hz relative to the transmitter, which sits at the water frequency for 1H MRS.
            v = 4.65 + v / f0_mhz
        out.append(v)
    return out


def edit_order(
    conditions: Sequence[str],
    edit_pulse: Mapping | None,
    *,
    source: str,
    f0_mhz: float | None = None,
) -> tuple[int, int]:
    """Return (index of edit-OFF, index of edit-ON) within `conditions`.

    `conditions` are the EditCondition labels of the DIM_EDIT entries in file order.
    Raises DataError for HERMES/HERCULES (more than two conditions) and when neither the
    labels nor the EditPulse offsets tell which entry is ON.
    """
    labels = [str(c) for c in conditions]
    if len(labels) > 2 or len(set(labels)) > 2:
        raise DataError(
            f"{source}: {len(labels)} edit conditions {labels} (HERMES/HERCULES-style); gabaapp "
            "quantifies two-condition MEGA-PRESS only (ON/OFF). Convert or select MEGA data."
        )
    if len(labels) != 2 or len(set(labels)) != 2:
        raise DataError(
            f"{source}: DIM_EDIT needs exactly two distinct edit conditions, got {labels}"
        )
    upper = [label.upper() for label in labels]
    if set(upper) == {"ON", "OFF"}:
        return upper.index("OFF"), upper.index("ON")

    # Labels like "A"/"B": decide from the editing pulse offsets.
    pulses = edit_pulse or {}
    distances = []
    for label in labels:
        entry = pulses.get(label)
        offsets = pulse_offsets_ppm(entry, f0_mhz) if isinstance(entry, Mapping) else []
        distances.append(min((abs(o - EDIT_ON_PPM) for o in offsets), default=float("inf")))
    is_on = [d <= _ON_TOLERANCE_PPM for d in distances]
    if sum(is_on) != 1:
        raise DataError(
            f"{source}: cannot tell edit-ON from edit-OFF: EditCondition {labels} are not ON/OFF "
            f"and EditPulse offsets do not single out one pulse near {EDIT_ON_PPM} ppm. Set "
            'dim_N_header.EditCondition to ["ON","OFF"] or ["OFF","ON"] in the file.'
        )
    on = is_on.index(True)
    log.info("%s: edit conditions %s, ON = %r from EditPulse offsets", source, labels, labels[on])
    return 1 - on, on
