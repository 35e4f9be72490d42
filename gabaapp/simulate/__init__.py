"""Synthesis of training spectra (batched, augmented, torch) and of synthetic BIDS datasets.

Public API: `SpectrumGenerator`, `SynthBatch`, `materialise`, `load_materialised`, and
`write_synthetic_bids` (gabaapp.simulate.bids_dataset).
"""

from gabaapp.simulate.generator import SpectrumGenerator, SynthBatch
from gabaapp.simulate.materialise import load_materialised, materialise

__all__ = ["SpectrumGenerator", "SynthBatch", "load_materialised", "materialise"]
