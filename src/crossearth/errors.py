"""User-facing errors: the CLI prints their message and exits non-zero, without a traceback.

Every class also derives from the builtin exception that fits, so Python callers can catch the
builtin they already expect: bad values and files are `ValueError`s, missing files are
`FileNotFoundError`s (and so `OSError`s), unknown names are `KeyError`s. All of them are
`CrossEarthError`s, and all are exported from `crossearth`.

    CrossEarthError
      InputError (ValueError)               a bad input image, output path or option
        InputNotFoundError (FileNotFoundError)   an input file or folder that does not exist
      ConfigError (ValueError)              a bad model/training config
        UnknownNameError (KeyError)         an unknown preset, zoo model or setting name
      CheckpointError (ValueError)          an unreadable or mismatched checkpoint
        CheckpointNotFoundError (FileNotFoundError)
        WeightsUnavailableError (FileNotFoundError)  not on disk and may not be downloaded
"""


class CrossEarthError(Exception):
    """Base class of errors caused by user input (files, configs, options), not by bugs."""


class InputError(CrossEarthError, ValueError):
    """An input image, output path or option is missing, unreadable or has the wrong value."""


class InputNotFoundError(InputError, FileNotFoundError):
    """An input file or folder does not exist."""

    def __str__(self) -> str:  # OSError formats (errno, strerror) pairs; keep the message
        return str(self.args[0]) if self.args else ""


class ConfigError(CrossEarthError, ValueError):
    """A model config is missing, malformed or describes an unsupported architecture."""


class UnknownNameError(ConfigError, KeyError):
    """A preset, zoo model or benchmark setting name that does not exist."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class CheckpointError(CrossEarthError, ValueError):
    """A checkpoint is unreadable, incomplete, or does not fit the model."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """A checkpoint file does not exist."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class WeightsUnavailableError(CheckpointError, FileNotFoundError):
    """A zoo checkpoint is not on disk and may not be downloaded (offline or not allowed)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


__all__ = [
    "CheckpointError",
    "CheckpointNotFoundError",
    "ConfigError",
    "CrossEarthError",
    "InputError",
    "InputNotFoundError",
    "UnknownNameError",
    "WeightsUnavailableError",
]
