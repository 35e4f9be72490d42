"""Why is the LCM residual on real 3 T PRESS not noise-like? One probe per hypothesis (issue 9).

Fits the Siemens RDA (TE 30) and Philips SDAT (TE 35) spectra of bench_lcm_realdata.py with
variants of the model, one change at a time, and reports residual SD / noise SD for each
(noise: gabaapp.lcm.noise with the default LcmConfig ranges), tNAA/tCr and Glx/tCr. Upper
bounds ("ub") add freedom no default model should have, to size what a cause could explain.
Probes H2-H4 change the model without individual shifts (the model of their time, kept
reproducible with individual_shifts="off"); H5 probes the individual shifts now on by
default for single spectra, and LCModel's short-TE MM/lipid set.
Result: benchmarks/results/lcm_realdata_probe.json; the log is in docs/lcm.md.

    .venv/bin/python benchmarks/bench_lcm_realdata_probe.py
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

import gabaapp.lcm.fit as lcm_fit
from gabaapp.config import LcmConfig
from gabaapp.lcm.mm import MM_COMPONENTS, MMComponent
from gabaapp.lcm.noise import noise_sd, segment_variances
from gabaapp.physics.megapress import simulate_spin_system
from gabaapp.physics.sequence import MegaPressSequence
from gabaapp.physics.spins import available_metabolites, load_spin_system, spin_system_from_dict
from gabaapp.spectra import Basis, fid_to_spectrum

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_lcm_realdata import REAL, late_power, load  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "lcm_realdata_probe.json"
SINGLETS = ("Cr", "PCr", "NAA", "Cho", "GPC", "PCh")


def _sub(label, shifts, couplings, scale=1.0):
    return {
        "label": label,
        "scale": scale,
        "spins": [{"label": k, "ppm": v} for k, v in shifts.items()],
        "couplings": [[a, b, j] for (a, b), j in couplings.items()],
    }


# Not among the bundled spin systems at the time (PE and Glc are since); shifts and J from Govindaraju et al., NMR Biomed 13:129
# (2000), Table 2 (glucose: alpha 36 %, beta 64 %).
EXTRA_SPINS = {
    "PE": {
        "name": "PE",
        "subsystems": [
            _sub(
                "PE",
                {"1a": 3.9765, "1b": 3.9765, "2a": 3.2160, "2b": 3.2160},
                {
                    ("1a", "1b"): -14.56,
                    ("1a", "2a"): 3.182,
                    ("1a", "2b"): 6.716,
                    ("1b", "2a"): 7.204,
                    ("1b", "2b"): 2.980,
                    ("2a", "2b"): -14.71,
                },
            )
        ],
    },
    "Glc": {
        "name": "Glc",
        "subsystems": [
            _sub(
                "alpha",
                {
                    "1": 5.216,
                    "2": 3.519,
                    "3": 3.698,
                    "4": 3.395,
                    "5": 3.822,
                    "6": 3.826,
                    "6p": 3.749,
                },
                {
                    ("1", "2"): 3.8,
                    ("2", "3"): 9.611,
                    ("3", "4"): 9.419,
                    ("4", "5"): 9.879,
                    ("5", "6"): 1.5,
                    ("5", "6p"): 6.0,
                    ("6", "6p"): -12.1,
                },
                0.36,
            ),
            _sub(
                "beta",
                {
                    "1": 4.630,
                    "2": 3.230,
                    "3": 3.473,
                    "4": 3.387,
                    "5": 3.450,
                    "6": 3.882,
                    "6p": 3.707,
                },
                {
                    ("1", "2"): 8.0,
                    ("2", "3"): 9.038,
                    ("3", "4"): 9.150,
                    ("4", "5"): 10.0,
                    ("5", "6"): 1.6,
                    ("5", "6p"): 5.4,
                    ("6", "6p"): -12.3,
                },
                0.64,
            ),
        ],
    },
    "Ala": {
        "name": "Ala",
        "subsystems": [
            _sub(
                "Ala",
                {"2": 3.7746, "3a": 1.4667, "3b": 1.4667, "3c": 1.4667},
                {("2", "3a"): 7.234, ("2", "3b"): 7.234, ("2", "3c"): 7.234},
            )
        ],
    },
}
S = ("single",)
MM_EXTRA = (
    MMComponent("Lip13n", 1.28, 0.08, S),
    MMComponent("Lip20", 2.04, 0.15, S),
    MMComponent("MM32", 3.20, 0.15, S),
    MMComponent("MM37", 3.75, 0.15, S),
    MMComponent("MM40", 4.00, 0.15, S),
)


def sequence(acq, **kw) -> MegaPressSequence:
    return MegaPressSequence.for_te(
        acq.te_s * 1e3,
        editing=False,
        f0_mhz=acq.f0_mhz,
        spectral_width_hz=acq.spectral_width_hz,
        n_points=acq.n_points,
        **kw,
    )


# The log's items 1-7 used the 16 spin systems bundled before PE, Glc and Asc were added;
# the probe keeps that base so that its rows stay reproducible (its own PE/Glc/Ala "extra"
# rows are the probes that led to bundling them; bench_lcm_press_basis.py measures the
# bundled ones).
LATER_BUNDLED = ("PE", "Glc", "Asc")


def simulate(acq, extra: tuple[str, ...] = (), **seq_kw) -> Basis:
    """Return the 16-metabolite PRESS basis (plus `extra` spin systems) for `acq`."""
    seq = sequence(acq, **seq_kw)
    base = tuple(n for n in available_metabolites() if n not in LATER_BUNDLED)
    systems = [load_spin_system(n) for n in base]
    systems += [spin_system_from_dict(EXTRA_SPINS[e]) for e in extra]
    off = np.array([simulate_spin_system(s, seq)[0] for s in systems])
    names = base + tuple(extra)
    return Basis(names, off, off, seq.acquisition(), seq.hash())


def with_rows(basis: Basis, suffix: str, rows: tuple[str, ...] | None, factor) -> Basis:
    """Return `basis` plus copies of `rows` (all if None) multiplied by `factor` (FID)."""
    idx = [i for i, n in enumerate(basis.names) if rows is None or n in rows]
    names = basis.names + tuple(basis.names[i] + suffix for i in idx)
    off = np.vstack([basis.off, basis.off[idx] * factor])
    return Basis(names, off, off, basis.acquisition, basis.sequence_hash + suffix)


@contextlib.contextmanager
def mm_set(components):
    """Temporarily fit with another MM component set (probe only)."""
    old = lcm_fit.MM_COMPONENTS
    lcm_fit.MM_COMPONENTS = tuple(components)
    try:
        yield
    finally:
        lcm_fit.MM_COMPONENTS = old


def single_quadratic_noise(fid, acq, ranges) -> float:
    """Return the former estimate: one quadratic per whole range, pooled (for comparison)."""
    spec, ppm = fid_to_spectrum(fid), acq.ppm_axis()
    n_edge = int(0.03 * ppm.size)
    inner = np.zeros(ppm.size, bool)
    inner[n_edge : ppm.size - n_edge] = True
    pieces = []
    for lo, hi in ranges:
        sel = inner & (ppm >= lo) & (ppm <= hi)
        if sel.sum() < 8:
            continue
        x = ppm[sel] - ppm[sel].mean()
        for part in (spec[sel].real, spec[sel].imag):
            pieces.append(part - np.polyval(np.polyfit(x, part, 2), x))
    res = np.concatenate(pieces)
    return float(np.sqrt(np.sum(res**2) / (res.size - 3 * len(pieces))))


def main() -> int:
    data = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (fmt, *files) in REAL.items():
            fid, acq, basis = load(name, fmt, files, Path(tmp))
            keep = [i for i, n in enumerate(basis.names) if n not in LATER_BUNDLED]
            names = tuple(basis.names[i] for i in keep)
            data[name] = (
                fid,
                acq,
                Basis(names, basis.off[keep], basis.on[keep], basis.acquisition, "16"),
            )
    default = LcmConfig(include_mm=True, individual_shifts="off")  # the model of H2-H4
    out: dict[str, dict] = {"noise": {}, "probes": {}}
    for name, (fid, acq, _) in data.items():
        ranges = default.noise_ppm_ranges
        wide = ((-3.0, 0.6), (5.5, 12.0))
        centres, ss, dof = segment_variances(fid, acq, ranges)
        out["noise"][name] = {
            "single_quadratic_default_ranges": single_quadratic_noise(fid, acq, ranges),
            "segments_default_ranges": noise_sd(fid, acq, ranges),
            "segments_with_5.5_8.5_ppm": noise_sd(fid, acq, wide),
            "segment_sd_default_ranges": {
                f"{c:.2f}": float(np.sqrt(s / d)) for c, s, d in zip(centres, ss, dof, strict=True)
            },
        }

    def probe(label, config=default, basis_fn=None, mm=None):
        row = {}
        for name, (fid, acq, basis) in data.items():
            b = basis_fn(name, acq, basis) if basis_fn else basis
            with mm_set(mm if mm is not None else MM_COMPONENTS):
                r = lcm_fit.fit_spectrum(fid, acq, b, b.names, config)
            a = r.amplitudes
            tcr = max(a["Cr"] + a["PCr"], 1e-30)
            row[name] = {
                "residual_to_noise": r.residual_to_noise["single"],
                "late_power": late_power(r, acq.f0_mhz),
                "tnaa_to_tcr": (a["NAA"] + a["NAAG"]) / tcr,
                "glx_to_tcr": (a["Glu"] + a["Gln"]) / tcr,
                "converged": r.converged,
                "individual_shift_hz": r.individual_shift_hz,
            }
        out["probes"][label] = row
        print(
            f"{label:44s} "
            + "  ".join(
                f"{n[:7]} {v['residual_to_noise']:.3f} (NAA/Cr {v['tnaa_to_tcr']:.2f}, "
                f"Glx/Cr {v['glx_to_tcr']:.2f})"
                for n, v in row.items()
            ),
            flush=True,
        )

    cache: dict = {}

    def sim(**kw):
        def fn(name, acq, _basis):
            key = (name, tuple(sorted(kw.items())))
            if key not in cache:
                cache[key] = simulate(acq, **kw)
            return cache[key]

        return fn

    probe("before issue-9 shifts (Voigt, 16 metabolites + MM, no individual shifts)")
    # H2: sequence timing of the basis (TE1/TE2 split not in the headers; default TE1 10 ms)
    for te1 in (6.0, 14.0, 17.0):
        probe(f"H2 TE1 {te1:g} ms", basis_fn=sim(te1_ms=te1))
    probe("H2 ideal (instantaneous) refocusing", basis_fn=sim(ideal_refocusing=True))
    # H3: line shape
    probe(
        "H3 Lorentzian only", LcmConfig(include_mm=True, individual_shifts="off", max_gauss_hz=0.01)
    )
    probe(
        "H3 Gaussian only", LcmConfig(include_mm=True, individual_shifts="off", max_lorentz_hz=0.01)
    )
    probe(
        "H3 free kernel (default stiffness)",
        LcmConfig(include_mm=True, individual_shifts="off", lineshape="free"),
    )
    probe(
        "H3 free kernel, stiffness 1e-7",
        LcmConfig(
            include_mm=True, individual_shifts="off", lineshape="free", lineshape_stiffness=1e-7
        ),
    )

    def narrowed(rows, d_hz):
        return lambda n, acq, b: with_rows(b, "_n", rows, np.exp(np.pi * d_hz * acq.time_axis()))

    probe("H3 ub: + singlets 4 Hz narrower", basis_fn=narrowed(SINGLETS, 4.0))
    probe("H3 ub: + every metabolite 4 Hz narrower", basis_fn=narrowed(None, 4.0))

    def quadrature(rows):
        def fn(n, acq, b):
            return with_rows(with_rows(b, "_pi", rows, 1j), "_mi", rows, -1j)

        return fn

    probe("H3 ub: per-singlet phase (+-90 deg copies)", basis_fn=quadrature(SINGLETS))
    probe("H3 ub: per-metabolite phase", basis_fn=quadrature(None))
    # H4: missing signals, MM, baseline
    for extra in (("PE",), ("Glc",), ("Ala",)):
        probe(f"H4 + {extra[0]}", basis_fn=sim(extra=extra))
    ch2 = {"name": "CrCH2", "subsystems": [_sub("CH2", {"a": 3.913}, {}, 2.0)]}

    def minus_ch2(name, acq, b):
        neg = -simulate_spin_system(spin_system_from_dict(ch2), sequence(acq))[0]
        off = np.vstack([b.off, neg])
        return Basis(b.names + ("-CrCH2",), off, off, b.acquisition, b.sequence_hash + "-CH2")

    probe("H4 + -CrCH2 (LCModel's CH2 correction)", basis_fn=minus_ch2)
    probe("H4 + MM/lipid 1.28 narrow, 2.04, 3.2, 3.75, 4.0", mm=MM_COMPONENTS + MM_EXTRA)
    for f in (0.6, 1.3):
        widths = tuple(MMComponent(c.name, c.ppm, c.fwhm_ppm * f, c.groups) for c in MM_COMPONENTS)
        probe(f"H4 MM widths x{f}", mm=widths)
    comb = tuple(MMComponent(f"G{p:.2f}", p, 0.06, S) for p in np.arange(1.0, 4.21, 0.05))
    probe("H4 ub: + Gaussians every 0.05 ppm", mm=MM_COMPONENTS + comb)
    for lo, hi in ((1.0, 1.8), (3.5, 4.2)):
        part = tuple(c for c in comb if lo - 1e-9 <= c.ppm <= hi + 1e-9)
        probe(f"H4 ub: + those Gaussians at {lo}-{hi} ppm only", mm=MM_COMPONENTS + part)
    probe(
        "H4 stiffness candidates down to 1e-8",
        LcmConfig(include_mm=True, individual_shifts="off", baseline_stiffness_steps=6),
    )
    for knots in (0.1, 0.05):
        probe(
            f"H4 baseline knots {knots} ppm",
            LcmConfig(
                include_mm=True,
                individual_shifts="off",
                baseline_knot_spacing_ppm=knots,
                baseline_stiffness_steps=6,
            ),
        )
    probe(
        "all plausible: TE1 14, +PE +Glc, MM extra, free",
        LcmConfig(include_mm=True, individual_shifts="off", lineshape="free"),
        basis_fn=sim(te1_ms=14.0, extra=("PE", "Glc")),
        mm=MM_COMPONENTS + MM_EXTRA,
    )
    # H5: individual shifts (LCModel-style Gaussian prior, hard limit 3 SD)
    probe(
        "H5 individual shifts (default: metabolites 0.004 ppm, MM 0.02)", LcmConfig(include_mm=True)
    )
    fixed_mm = tuple(
        MMComponent(c.name, c.ppm, c.fwhm_ppm, c.groups, 1e-6, c.satellites) for c in MM_COMPONENTS
    )
    probe("H5 individual shifts, metabolites only", LcmConfig(include_mm=True), mm=fixed_mm)
    probe(
        "H5 individual shifts, MM lines only",
        LcmConfig(include_mm=True, individual_shift_sd_ppm=1e-6),
    )
    for sd in (0.002, 0.008):
        probe(
            f"H5 individual shifts, metabolite SD {sd} ppm",
            LcmConfig(include_mm=True, individual_shift_sd_ppm=sd),
        )
    for sd_w in (0.5, 1.0, 2.0):
        probe(
            f"H5 individual shifts + widths, width SD {sd_w} Hz",
            LcmConfig(include_mm=True, individual_width_sd_hz=sd_w),
        )
    limit = lcm_fit.INDIVIDUAL_SHIFT_LIMIT
    lcm_fit.INDIVIDUAL_SHIFT_LIMIT = 1e6
    try:
        probe("H5 individual shifts without the 3-SD limit", LcmConfig(include_mm=True))
    finally:
        lcm_fit.INDIVIDUAL_SHIFT_LIMIT = limit
    probe(
        "H5 LCModel short-TE MM/lipid set, no shifts",
        LcmConfig(include_mm=True, individual_shifts="off", mm_set="lcmodel"),
    )
    probe("H5 LCModel short-TE MM/lipid set + shifts", LcmConfig(include_mm=True, mm_set="lcmodel"))
    probe(
        "H5 individual shifts + free kernel",
        LcmConfig(include_mm=True, lineshape="free"),
    )
    probe(
        "H5 individual shifts + TE1 14 ms, +PE +Glc, free kernel",
        LcmConfig(include_mm=True, lineshape="free"),
        basis_fn=sim(te1_ms=14.0, extra=("PE", "Glc")),
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
