"""Errors a user can cause. Each carries the exit code of the BIDS execution spec (BEP027).

`gabaapp.cli` turns them into one stderr line and that exit code, never a traceback.
Messages say what is wrong and what to do about it.
"""


class GabaappError(Exception):
    """Base class: a problem the user can fix. `exit_code` follows BEP027."""

    exit_code = 1


class BIDSValidationError(GabaappError):
    """The input dataset is not valid BIDS."""

    exit_code = 16


class UnknownAnalysisLevelError(GabaappError):
    """The analysis level is neither participant nor group."""

    exit_code = 17


class NoFilesSelectedError(GabaappError):
    """Labels or filters selected no files."""

    exit_code = 18


class UsageError(GabaappError):
    """Command-line or configuration mistake."""

    exit_code = 64


class DataError(GabaappError):
    """Input data are malformed or inconsistent (e.g. sidecar and header disagree)."""

    exit_code = 65


class NoInputError(GabaappError):
    """An input file or directory does not exist or holds no usable data."""

    exit_code = 66


class CannotCreateOutputError(GabaappError):
    """An output location cannot be created (e.g. inside the input dataset)."""

    exit_code = 73


class OutputWriteError(GabaappError):
    """Writing an output file failed."""

    exit_code = 74
