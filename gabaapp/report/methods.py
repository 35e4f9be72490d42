"""Methods boilerplate (consensus terminology of Near et al. 2021) and the references to cite.

`methods_paragraphs` returns text a user can paste into a paper; `citation_markdown` and
`citation_bibtex` return the contents of `logs/CITATION.md` and `logs/CITATION.bib`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Reference:
    """One reference: BibTeX key, formatted text, and its BibTeX entry."""

    key: str
    text: str
    bibtex: str


def _bib(kind: str, key: str, **fields: str) -> str:
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields.items())
    return f"@{kind}{{{key},\n{body}\n}}"


REFERENCES: dict[str, Reference] = {
    r.key: r
    for r in (
        Reference(
            "ma2026simtoreal",
            "Ma Z, Shermer SM, Karakus O, Langbein FC. The Sim-to-Real Gap in MRS Quantification: "
            "A Systematic Deep Learning Validation for GABA. arXiv:2602.20289 (2026).",
            _bib(
                "article",
                "ma2026simtoreal",
                author="Ma, Zien and Shermer, S. M. and Karakus, Oktay and Langbein, Frank C.",
                title="The Sim-to-Real Gap in {MRS} Quantification: A Systematic Deep Learning "
                "Validation for {GABA}",
                journal="arXiv preprint arXiv:2602.20289",
                year="2026",
            ),
        ),
        Reference(
            "near2021consensus",
            "Near J, Harris AD, Juchem C, et al. Preprocessing, analysis and quantification in "
            "single-voxel magnetic resonance spectroscopy: experts' consensus recommendations. "
            "NMR Biomed. 2021;34(5):e4257. doi:10.1002/nbm.4257",
            _bib(
                "article",
                "near2021consensus",
                author="Near, Jamie and Harris, Ashley D. and Juchem, Christoph and others",
                title="Preprocessing, analysis and quantification in single-voxel magnetic "
                "resonance spectroscopy: experts' consensus recommendations",
                journal="NMR in Biomedicine",
                volume="34",
                number="5",
                pages="e4257",
                year="2021",
                doi="10.1002/nbm.4257",
            ),
        ),
        Reference(
            "mullins2014megapress",
            "Mullins PG, McGonigle DJ, O'Gorman RL, et al. Current practice in the use of "
            "MEGA-PRESS spectroscopy for the detection of GABA. NeuroImage. 2014;86:43-52. "
            "doi:10.1016/j.neuroimage.2012.12.004",
            _bib(
                "article",
                "mullins2014megapress",
                author="Mullins, Paul G. and McGonigle, David J. and O'Gorman, Ruth L. and others",
                title="Current practice in the use of {MEGA-PRESS} spectroscopy for the detection "
                "of {GABA}",
                journal="NeuroImage",
                volume="86",
                pages="43--52",
                year="2014",
                doi="10.1016/j.neuroimage.2012.12.004",
            ),
        ),
        Reference(
            "near2015sr",
            "Near J, Edden R, Evans CJ, Paquin R, Harris A, Jezzard P. Frequency and phase drift "
            "correction of magnetic resonance spectroscopy data by spectral registration in the "
            "time domain. Magn Reson Med. 2015;73(1):44-50. doi:10.1002/mrm.25094",
            _bib(
                "article",
                "near2015sr",
                author='Near, Jamie and Edden, Richard and Evans, C. John and Paquin, Rapha{\\"e}l '
                "and Harris, Ashley and Jezzard, Peter",
                title="Frequency and phase drift correction of magnetic resonance spectroscopy "
                "data by spectral registration in the time domain",
                journal="Magnetic Resonance in Medicine",
                volume="73",
                number="1",
                pages="44--50",
                year="2015",
                doi="10.1002/mrm.25094",
            ),
        ),
        Reference(
            "mikkelsen2020robspecreg",
            "Mikkelsen M, Tapper S, Near J, Mostofsky SH, Puts NAJ, Edden RAE. Correcting "
            "frequency and phase offsets in MRS data using robust spectral registration. "
            "NMR Biomed. 2020;33(10):e4368. doi:10.1002/nbm.4368",
            _bib(
                "article",
                "mikkelsen2020robspecreg",
                author="Mikkelsen, Mark and Tapper, Sofie and Near, Jamie and Mostofsky, Stewart H. "
                "and Puts, Nicolaas A. J. and Edden, Richard A. E.",
                title="Correcting frequency and phase offsets in {MRS} data using robust spectral "
                "registration",
                journal="NMR in Biomedicine",
                volume="33",
                number="10",
                pages="e4368",
                year="2020",
                doi="10.1002/nbm.4368",
            ),
        ),
        Reference(
            "klose1990ecc",
            "Klose U. In vivo proton spectroscopy in presence of eddy currents. Magn Reson Med. "
            "1990;14(1):26-30. doi:10.1002/mrm.1910140104",
            _bib(
                "article",
                "klose1990ecc",
                author="Klose, Uwe",
                title="In vivo proton spectroscopy in presence of eddy currents",
                journal="Magnetic Resonance in Medicine",
                volume="14",
                number="1",
                pages="26--30",
                year="1990",
                doi="10.1002/mrm.1910140104",
            ),
        ),
        Reference(
            "hatami2018fcnn",
            "Hatami N, Sdika M, Ratiney H. Magnetic resonance spectroscopy quantification using "
            "deep learning. MICCAI 2018. arXiv:1806.07237",
            _bib(
                "inproceedings",
                "hatami2018fcnn",
                author="Hatami, Nima and Sdika, Micha{\\\"e}l and Ratiney, H{\\'e}l{\\`e}ne",
                title="Magnetic resonance spectroscopy quantification using deep learning",
                booktitle="Medical Image Computing and Computer Assisted Intervention (MICCAI)",
                year="2018",
                note="arXiv:1806.07237",
            ),
        ),
        Reference(
            "provencher1993lcmodel",
            "Provencher SW. Estimation of metabolite concentrations from localized in vivo "
            "proton NMR spectra. Magn Reson Med. 1993;30(6):672-679. doi:10.1002/mrm.1910300604",
            _bib(
                "article",
                "provencher1993lcmodel",
                author="Provencher, Stephen W.",
                title="Estimation of metabolite concentrations from localized in vivo proton "
                "{NMR} spectra",
                journal="Magnetic Resonance in Medicine",
                volume="30",
                number="6",
                pages="672--679",
                year="1993",
                doi="10.1002/mrm.1910300604",
            ),
        ),
        Reference(
            "gorgolewski2011nipype",
            "Gorgolewski K, Burns CD, Madison C, et al. Nipype: a flexible, lightweight and "
            "extensible neuroimaging data processing framework in Python. Front Neuroinform. "
            "2011;5:13. doi:10.3389/fninf.2011.00013",
            _bib(
                "article",
                "gorgolewski2011nipype",
                author="Gorgolewski, Krzysztof and Burns, Christopher D. and Madison, Cindee and "
                "others",
                title="Nipype: a flexible, lightweight and extensible neuroimaging data "
                "processing framework in {Python}",
                journal="Frontiers in Neuroinformatics",
                volume="5",
                pages="13",
                year="2011",
                doi="10.3389/fninf.2011.00013",
            ),
        ),
    )
}

# Which references each quantifier adds to the always-cited ones.
_MODEL_REFERENCES = {
    "yae": ("ma2026simtoreal",),
    "cnn": ("ma2026simtoreal",),
    "fcnn": ("ma2026simtoreal", "hatami2018fcnn"),
    "lcm": ("provencher1993lcmodel",),
}
_ALWAYS = (
    "ma2026simtoreal",
    "near2021consensus",
    "mullins2014megapress",
    "near2015sr",
    "mikkelsen2020robspecreg",
    "klose1990ecc",
    "gorgolewski2011nipype",
)


def references_for(models: Sequence[str]) -> list[Reference]:
    """Return the references to cite for a run with quantifiers `models`, without duplicates."""
    keys = list(_ALWAYS)
    for model in models:
        keys += [k for k in _MODEL_REFERENCES.get(model, ()) if k not in keys]
    return [REFERENCES[k] for k in keys]


def methods_paragraphs(
    version: str, models: Sequence[str], preprocessing: Mapping[str, object] | None = None
) -> list[str]:
    """Return the methods boilerplate as paragraphs (plain text with [key] citation marks).

    Wording follows the consensus terminology of Near et al. (2021): coil combination,
    frequency-and-phase correction (alignment), outlier rejection, eddy-current correction,
    signal averaging; "relative concentrations" because no water referencing is done.
    """
    settings = ""
    if preprocessing:
        settings = " Settings: " + ", ".join(f"{k} = {v}" for k, v in preprocessing.items()) + "."
    names = {
        "yae": "a Y-shaped autoencoder (YAE) with a quantification head",
        "cnn": "a convolutional neural network (CNN)",
        "fcnn": "the FCNN of Hatami et al. (2018) [hatami2018fcnn]",
        "lcm": "linear-combination modelling of the edit-OFF and edit-ON spectra "
        "[provencher1993lcmodel]",
    }
    described = "; ".join(names.get(m, m) for m in models)
    return [
        f"MEGA-PRESS data were processed with gabaapp {version} [ma2026simtoreal], a BIDS-App "
        "built on Nipype [gorgolewski2011nipype]. Terminology follows the experts' consensus "
        "recommendations on preprocessing, analysis and quantification of single-voxel MRS "
        "[near2021consensus].",
        "Pre-processing: receiver coils were combined with weights from the first points of "
        "the FIDs; individual transients were corrected for frequency and phase drift by "
        "spectral registration in the time domain [near2015sr], in its robust form "
        "[mikkelsen2020robspecreg], separately for the edit-ON and edit-OFF sub-spectra; "
        "outlier transients were rejected; eddy-current effects were corrected with the phase "
        "of the unsuppressed water reference where available [klose1990ecc]; the remaining "
        "transients were averaged, and the edit-OFF and edit-ON spectra were aligned to the "
        f"NAA (2.01 ppm) and Cr (3.015 ppm) singlets [mullins2014megapress].{settings}",
        "Quantification: the averaged edit-OFF and edit-ON spectra were resampled to 2048 "
        "points between 1.0 and 4.5 ppm, scaled by the maximum edit-OFF magnitude in that "
        f"window, and quantified with {described}. The deep-learning models were trained only "
        "on simulated MEGA-PRESS spectra [ma2026simtoreal]. Results are relative "
        "concentrations of Cr, GABA, Gln, Glu and NAA (sum-normalised), with ratios to Cr and "
        "NAA; uncertainties are the standard deviation over Monte-Carlo dropout samples. No "
        "water referencing, tissue or relaxation correction was applied. The GABA estimate "
        "includes any co-edited macromolecule signal at 3.0 ppm unless the model card states "
        "otherwise (GABA+) [mullins2014megapress].",
    ]


def citation_markdown(
    version: str, models: Sequence[str], preprocessing: Mapping[str, object] | None = None
) -> str:
    """Return the text of logs/CITATION.md: the methods boilerplate and the reference list."""
    refs = references_for(models)
    lines = ["# Citing gabaapp results", "", "## Methods (boilerplate)", ""]
    for paragraph in methods_paragraphs(version, models, preprocessing):
        lines += [paragraph, ""]
    lines += ["## References", ""]
    lines += [f"- [{r.key}] {r.text}" for r in refs]
    lines += ["", "BibTeX entries are in CITATION.bib beside this file.", ""]
    return "\n".join(lines)


def citation_bibtex(models: Sequence[str]) -> str:
    """Return the text of logs/CITATION.bib for a run with quantifiers `models`."""
    return "\n\n".join(r.bibtex for r in references_for(models)) + "\n"
