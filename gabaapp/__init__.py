"""gabaapp: deep-learning GABA quantification of MEGA-PRESS spectra as a BIDS-App."""

from gabaapp.__about__ import __version__

__all__ = ["__version__", "quantify"]


def __getattr__(name: str):
    """Lazy re-exports: `gabaapp.quantify` imports the pipeline (numpy, torch...) only when
    first used, so `import gabaapp` stays light."""
    if name == "quantify":
        from gabaapp.pipeline import quantify

        return quantify
    raise AttributeError(f"module 'gabaapp' has no attribute {name!r}")
