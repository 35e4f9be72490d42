"""Agreement with FID-A's MEGA-PRESS basis (issue 4): correlation and amplitude per spectrum.

Runs gabaapp's simulator with FID-A's settings (ideal localisation, 20 ms editing pulses,
1.90 / 7.40 ppm, 2500 Hz, 4096 points, 1 Hz) for both coherence selections and compares OFF, ON
and DIFF over 1.5-4.2 ppm with ../shared/data/mrsnet_fida_megapress_basis (AGPL data, read in
place). Result: benchmarks/results/physics_fida.json.

    .venv/bin/python benchmarks/bench_physics_fida.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "unit"))

from test_physics_fida import FIDA_SEQ, compare_with_fida  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "physics_fida.json"
DATA = REPO.parent / "shared" / "data" / "mrsnet_fida_megapress_basis"


def main() -> None:
    out = {}
    for selection in ("fida_cycle", "pathway"):
        result, scale = compare_with_fida(DATA, FIDA_SEQ.replace(coherence_selection=selection))
        out[selection] = {
            "scale_fida_per_gabaapp": [scale.real, scale.imag],
            "spectra": {
                f"{m} {c}": {"corr": r, "rel_amp_diff": a} for (m, c), (r, a) in result.items()
            },
            "min_corr_off_on": min(r for (m, c), (r, _) in result.items() if c != "DIFF"),
            "min_corr_diff": min(r for (m, c), (r, _) in result.items() if c == "DIFF"),
        }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=1) + "\n")
    for sel, res in out.items():
        print(
            sel,
            "min corr OFF/ON",
            round(res["min_corr_off_on"], 5),
            "DIFF",
            round(res["min_corr_diff"], 5),
        )
        for k, v in res["spectra"].items():
            print(f"  {k:10s} corr {v['corr']:.5f}  amp {v['rel_amp_diff']:+.4f}")


if __name__ == "__main__":
    main()
