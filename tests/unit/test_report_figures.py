"""Report figures, QC traffic lights, methods/citations and HTML rendering on synthetic inputs."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from gabaapp.report import figures, html, methods, qc
from gabaapp.spectra import Acquisition, fid_to_spectrum


def _lorentzian_fids(acq: Acquisition, peaks_ppm, lw_hz: float, shifts_hz=(0.0,)) -> np.ndarray:
    """FIDs [len(shifts_hz), n] of singlets at `peaks_ppm`, each shifted by shifts_hz."""
    t = acq.time_axis()
    out = []
    for shift in shifts_hz:
        fid = np.zeros_like(t, dtype=complex)
        for ppm in peaks_ppm:
            f_hz = (ppm - acq.centre_ppm) * acq.f0_mhz + shift
            fid += np.exp(2j * np.pi * f_hz * t - np.pi * lw_hz * t)
        out.append(fid)
    return np.array(out)


@pytest.fixture
def acq() -> Acquisition:
    return Acquisition(f0_mhz=123.2, dwell_s=1 / 2000, n_points=2048)


def _png_size(uri: str) -> tuple[int, int]:
    raw = base64.b64decode(uri.split(",", 1)[1])
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(raw[16:20], "big"), int.from_bytes(raw[20:24], "big")


def test_every_figure_renders_to_a_png_data_uri(acq):
    ppm = acq.ppm_axis()
    rng = np.random.default_rng(0)
    shifts = rng.normal(0, 3, 16)
    before = fid_to_spectrum(_lorentzian_fids(acq, [2.01, 3.015], 4.0, shifts))
    after = fid_to_spectrum(_lorentzian_fids(acq, [2.01, 3.015], 4.0, np.zeros(16)))
    rejected = np.zeros(16, bool)
    rejected[3] = True
    grid = np.linspace(1.0, 4.5, 2048)
    x = rng.normal(size=(4, 2048))
    made = [
        figures.plot_transients(ppm, before, after, rejected),
        figures.plot_drift(shifts, rng.normal(0, 5, 16), rejected),
        figures.plot_rejection(rng.random(16), rejected, 0.9, "residual"),
        figures.plot_edit_spectra(ppm, before[0], after[0]),
        figures.plot_reconstruction(grid, x, 0.9 * x, ("a", "b", "c", "d")),
        figures.plot_predicted_vs_true(rng.random((6, 5)), rng.random((6, 5)), tuple("ABCDE")),
        figures.plot_distributions({"GABA": rng.random(8)}, {"GABA": np.arange(8) == 2}),
        figures.plot_qc_scatter(rng.random(8), rng.random(8), "fwhm", "snr"),
    ]
    for fig in made:
        width, height = _png_size(figures.figure_to_data_uri(fig, "png", dpi=50))
        assert width >= 50 and height >= 50
    svg = base64.b64decode(figures.figure_to_data_uri(made[0], "svg").split(",", 1)[1])
    assert b"<svg" in svg


def test_figure_bytes_are_identical_across_calls(acq):
    # Reruns must give byte-identical reports: no timestamps in the images.
    ppm = acq.ppm_axis()
    spec = fid_to_spectrum(_lorentzian_fids(acq, [2.01], 4.0))[0]
    uris = {
        figures.figure_to_data_uri(figures.plot_edit_spectra(ppm, spec, spec)) for _ in range(2)
    }
    assert len(uris) == 1


def test_edit_spectra_figure_puts_naa_at_2_01_ppm_on_an_inverted_axis(acq):
    ppm = acq.ppm_axis()
    off = fid_to_spectrum(_lorentzian_fids(acq, [2.01], 3.0))[0]
    fig = figures.plot_edit_spectra(ppm, off, off * 1.0, window_ppm=(1.0, 4.5))
    ax = fig.axes[0]
    left, right = ax.get_xlim()
    assert left > right  # MRS convention: ppm decreases to the right
    line = ax.get_lines()[0]
    xs, ys = line.get_data()
    assert abs(xs[np.argmax(ys)] - 2.01) < 0.01
    # DIFF of identical ON/OFF is zero: Cr-like cancellation shows as a flat line
    assert np.allclose(fig.axes[2].get_lines()[0].get_data()[1], 0)
    # the shaded model window spans exactly 1.0-4.5 ppm
    span = fig.axes[0].patches[0]
    assert np.isclose(span.get_x(), 1.0) and np.isclose(span.get_x() + span.get_width(), 4.5)


@pytest.mark.parametrize(
    ("fwhm", "expected"),
    [
        (0.05, "pass"),
        (0.0999, "pass"),
        (0.10, "warn"),
        (0.149, "warn"),
        (0.15, "warn"),
        (0.151, "fail"),
        (0.3, "fail"),
        (float("nan"), "info"),
        (None, "info"),
    ],
)
def test_naa_fwhm_traffic_light_follows_the_010_015_ppm_rule(fwhm, expected):
    assert qc.THRESHOLDS["naa_fwhm_ppm"].status(fwhm) == expected


def test_snr_traffic_light_is_higher_is_better():
    t = qc.THRESHOLDS["snr"]
    assert (t.status(100), t.status(30), t.status(10)) == ("pass", "warn", "fail")


def test_qc_rows_keep_unknown_metrics_and_report_worst_status():
    rows = qc.qc_rows({"naa_fwhm_ppm": 0.12, "rejected_fraction": 0.0, "custom": 3.0})
    assert [r.status for r in rows] == ["warn", "pass", "info"]
    assert qc.worst_status(rows) == "warn"
    assert qc.worst_status(qc.qc_rows({"naa_fwhm_ppm": 0.2})) == "fail"


def test_reconstruction_residual_is_relative_rms():
    x = np.ones((4, 8))
    assert qc.reconstruction_residual(x, x) == 0
    assert np.isclose(qc.reconstruction_residual(x, 0.9 * x), 0.1)


def test_citations_list_every_required_reference_once():
    md = methods.citation_markdown("0.1.0", ["yae", "lcm"], {"alignment": "RobSpecReg"})
    bib = methods.citation_bibtex(["yae", "lcm", "yae"])
    for key in (
        "near2021consensus",
        "mullins2014megapress",
        "near2015sr",
        "mikkelsen2020robspecreg",
        "klose1990ecc",
        "ma2026simtoreal",
        "provencher1993lcmodel",
    ):
        assert f"[{key}]" in md
        assert bib.count(f"{{{key},") == 1
    assert "hatami2018fcnn" not in bib
    assert "alignment = RobSpecReg" in md
    # every citation mark in the methods text resolves to a listed reference
    marks = set(re.findall(r"\[([a-z0-9]+)\]", " ".join(methods.methods_paragraphs("x", ["fcnn"]))))
    assert marks <= {r.key for r in methods.references_for(["fcnn"])}
    # braces balance in every BibTeX entry
    for entry in bib.split("\n\n"):
        assert entry.count("{") == entry.count("}")


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs)["src"])


def _scan(name: str, status: str = "ok", uri: str = "") -> dict:
    rows = qc.rows_as_dicts(qc.qc_rows({"naa_fwhm_ppm": 0.08, "snr": 12.0}))
    return {
        "name": name,
        "source": f"sub-01/mrs/{name}.nii.gz",
        "status": status,
        "error": None if status == "ok" else "DataError: EditCondition missing <b>",
        "qc": rows,
        "qc_status": "fail",
        "figures": [{"title": "spectra", "caption": "OFF/ON/DIFF", "uri": uri}] if uri else [],
        "results": [
            {
                "model": "yae",
                "gaba_label": "GABA+",
                "weights_sha256": "ab" * 32,
                "rows": [
                    {
                        "metabolite": "GABA",
                        "concentration": 0.05,
                        "concentration_sd": 0.01,
                        "percent_sd": 20.0,
                        "ratio_cr": 0.2,
                        "ratio_naa": 0.1,
                        "flags": "n/a",
                    }
                ],
            }
        ],
        "outputs": [f"sub-01/mrs/{name}_desc-yae_concentrations.tsv"],
    }


def test_participant_report_is_self_contained_and_escapes_errors():
    uri = figures.figure_to_data_uri(figures.plot_qc_scatter([1, 2], [2, 1], "a", "b"), dpi=40)
    page = html.render_participant_report(
        "01",
        [_scan("sub-01_acq-a_svs", uri=uri), _scan("sub-01_acq-b_svs", "failed")],
        "0.1.0",
        ["yae"],
    )
    parsed = _Collector()
    parsed.feed(page)
    assert parsed.images and all(src.startswith("data:image/") for src in parsed.images)
    assert 'src="http' not in page and "<link" not in page  # nothing fetched from outside
    assert "EditCondition missing &lt;b&gt;" in page  # user-derived text is escaped
    assert 'class="status fail"' in page and 'class="status pass"' in page
    assert "GABA+" in page and "near2021consensus" in page


def test_group_report_lists_failures_accuracy_and_outliers():
    page = html.render_group_report(
        "0.1.0",
        ["yae"],
        3,
        [],
        outliers=[
            {
                "scan": "s3",
                "model": "yae",
                "metabolite": "GABA",
                "value": 0.9,
                "median": 0.1,
                "mad": 0.01,
            }
        ],
        failures=[{"scan": "sub-09_svs", "error": "NoInputError: missing"}],
        accuracy=[
            {
                "model": "yae",
                "metabolite": "GABA",
                "n": 3,
                "mae": 0.01,
                "slope": 1.0,
                "intercept": 0.0,
                "r2": 0.99,
            }
        ],
        qc_summary=[{"scan": "s1", "qc_status": "pass", "naa_fwhm_ppm": 0.07}],
    )
    assert "sub-09_svs" in page and "NoInputError: missing" in page
    assert "0.99" in page and "s3" in page and "status pass" in page
