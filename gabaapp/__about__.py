"""The one place the gabaapp version lives."""

__version__ = "0.1.0"
