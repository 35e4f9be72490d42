"""Linear-combination model (LCModel-style) fit with Cramér-Rao lower bounds.

Public API: `fit_megapress`, `fit_spectrum`, `LcmResult` (gabaapp.lcm.fit) and
`resample_basis` (gabaapp.lcm.resample). Options: gabaapp.config.LcmConfig.
"""

from gabaapp.lcm.fit import LcmResult, fit_megapress, fit_spectrum
from gabaapp.lcm.resample import resample_basis

__all__ = ["LcmResult", "fit_megapress", "fit_spectrum", "resample_basis"]
