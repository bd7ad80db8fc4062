"""User-facing errors: the CLI prints their message and exits non-zero, without a traceback."""


class CrossEarthError(Exception):
    """Base class of errors caused by user input (files, configs, options), not by bugs."""


class ConfigError(CrossEarthError):
    """A model config is missing, malformed or describes an unsupported architecture."""


class CheckpointError(CrossEarthError):
    """A checkpoint is unreadable, incomplete, or does not fit the model."""


class InputError(CrossEarthError):
    """An input image is missing, unreadable or has the wrong shape."""


class WeightsUnavailableError(CheckpointError):
    """A zoo checkpoint is not on disk and may not be downloaded (offline or not allowed)."""
