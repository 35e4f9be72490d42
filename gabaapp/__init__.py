"""gabaapp: deep-learning GABA quantification of MEGA-PRESS spectra as a BIDS-App."""

from gabaapp.__about__ import __version__

__all__ = ["__version__"]
