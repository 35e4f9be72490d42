"""Profiling the PRESS TE1/TE2 split on the data (gabaapp.lcm.timing).

Independent expectation: a spectrum simulated by gabaapp.physics with a known TE1 (plus Voigt
broadening and white noise) is fitted best by the basis of that TE1, and no longer noise-like
with the default split of 10 ms. The multiplets' dependence on the split is physics (J
evolution during the two echo periods; Thompson & Allen, MRM 41:1162, 1999), not a property
of the fit.
"""

from __future__ import annotations

import numpy as np
import pytest

from gabaapp.config import LcmConfig
from gabaapp.errors import UsageError
from gabaapp.spectra import Acquisition

pytest.importorskip("gabaapp.physics.megapress", reason="physics simulator absent")
from gabaapp.lcm.timing import press_basis, te1_profile  # noqa: E402

NAMES = ("Cr", "NAA", "Glu", "Gln", "mI")
CONC = np.array([8.0, 10.0, 9.0, 4.0, 6.0])
ACQ = Acquisition(f0_mhz=123.2, dwell_s=1 / 1200, n_points=1024, te_s=0.030, centre_ppm=4.65)
CONFIG = LcmConfig(baseline_stiffness_steps=1)


def _spectrum(te1_ms: float, snr_noise: float, seed: int = 0) -> np.ndarray:
    """Return a PRESS FID from the physics basis of TE1 = te1_ms: Voigt 3 Hz / 4 Hz, a
    2 Hz shift, 20 degrees of phase, complex white noise of SD `snr_noise` per point."""
    basis = press_basis(ACQ, te1_ms, NAMES)
    t = ACQ.time_axis()
    decay = np.exp(
        2j * np.pi * 2.0 * t - np.pi * 3.0 * t - (np.pi * 4.0 * t) ** 2 / (4 * np.log(2))
    )
    rng = np.random.default_rng(seed)
    noise = snr_noise * (rng.normal(size=t.size) + 1j * rng.normal(size=t.size))
    return (CONC @ basis.off) * decay * np.exp(1j * np.deg2rad(20.0)) + noise


def test_profile_finds_the_split_the_spectrum_was_simulated_with():
    """At the SNR of the real spectra of issue 9 (NAA peak / noise SD ~160; measured here
    residual/noise 1.01 at the true 14 ms, ~1.2 at 10 ms)."""
    fid = _spectrum(14.0, snr_noise=0.15)
    p = te1_profile(fid, ACQ, (8.0, 10.0, 12.0, 14.0, 16.0), NAMES, CONFIG)
    assert p.te_ms == pytest.approx(30.0)
    assert not p.at_grid_edge
    assert p.best_te1_ms == pytest.approx(14.0, abs=0.5)
    ratio = dict(zip(p.te1_ms, p.residual_to_noise, strict=True))
    # the right split leaves noise (a correct model leaves a little less than 1) ...
    assert ratio[14.0] < 1.02
    # ... the default 10 ms does not: the multiplets no longer match
    assert ratio[10.0] > 1.1 * ratio[14.0]
    best = p.fits[p.te1_ms.index(14.0)]
    for name, c in zip(NAMES, CONC, strict=True):
        # within 3 CRLBs of the ratio (noise, not bias; Gln's CRLB is ~2 %)
        rel = 3 * np.hypot(best.crlb_percent[name], best.crlb_percent["Cr"]) / 100
        assert best.ratio(name) == pytest.approx(c / CONC[0], rel=rel), name


def test_singlets_do_not_depend_on_the_split():
    """Uncoupled spins refocus the same for any TE1 (no J evolution): the Cr and NAA-acetyl
    singlets give the same basis up to the coupled aspartyl part."""
    a, b = press_basis(ACQ, 8.0, ("Cr",)), press_basis(ACQ, 14.0, ("Cr",))
    np.testing.assert_allclose(a.off, b.off, atol=1e-6 * np.abs(a.off).max())
    c, d = press_basis(ACQ, 8.0, ("Glu",)), press_basis(ACQ, 14.0, ("Glu",))
    assert np.abs(c.off - d.off).max() > 0.05 * np.abs(c.off).max()


def test_bad_grids_are_usage_errors():
    fid = _spectrum(10.0, snr_noise=0.5)
    with pytest.raises(UsageError, match="empty"):
        te1_profile(fid, ACQ, (), NAMES, CONFIG)
    with pytest.raises(UsageError, match="TE > TE1"):
        te1_profile(fid, ACQ, (35.0,), NAMES, CONFIG)
    no_te = Acquisition(f0_mhz=123.2, dwell_s=1 / 1200, n_points=1024, te_s=None)
    with pytest.raises(UsageError, match="echo time"):
        press_basis(no_te, 10.0, NAMES)
