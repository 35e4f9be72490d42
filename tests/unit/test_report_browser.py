"""The participant report renders in a real browser (headless Chromium) and is not blank."""

from __future__ import annotations

import shutil
import subprocess

import matplotlib.image
import numpy as np
import pytest

from gabaapp.report import figures, html, qc

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _png_pixels(path) -> np.ndarray:
    """Return the screenshot as uint8-range ints [h, w, c] (matplotlib reads PNG via Pillow)."""
    return np.round(matplotlib.image.imread(path) * 255).astype(int)


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (apt-get install chromium)")
def test_participant_report_renders_in_headless_chromium(tmp_path):
    rng = np.random.default_rng(1)
    fig = figures.plot_predicted_vs_true(rng.random((5, 5)), rng.random((5, 5)), tuple("ABCDE"))
    scan = {
        "name": "sub-01_acq-megapress_svs",
        "source": "sub-01/mrs/sub-01_acq-megapress_svs.nii.gz",
        "status": "ok",
        "error": None,
        "qc": qc.rows_as_dicts(qc.qc_rows({"naa_fwhm_ppm": 0.2})),
        "qc_status": "fail",
        "figures": [{"title": "t", "caption": "c", "uri": figures.figure_to_data_uri(fig)}],
        "results": [],
        "outputs": [],
    }
    page = tmp_path / "sub-01.html"
    page.write_text(html.render_participant_report("01", [scan], "0.1.0", ["yae"]))
    shot = tmp_path / "shot.png"
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=900,1400",
        f"--screenshot={shot}",
        page.as_uri(),
    ]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    assert shot.stat().st_size > 1000
    pixels = _png_pixels(shot)[..., :3]
    assert pixels.shape[:2] == (1400, 900)
    # the page is not blank: the red FAIL traffic light (#f7b9b9) and dark text are drawn
    assert (np.abs(pixels - np.array([0xF7, 0xB9, 0xB9])).sum(-1) < 12).sum() > 50
    assert (pixels.sum(-1) < 150).sum() > 500
