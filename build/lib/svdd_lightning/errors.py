"""User-facing errors. Each message names the offending input and what to do about it; the
entry points print them as one paragraph and exit non-zero instead of a traceback."""


class SVDDError(Exception):
    """Base class of errors caused by user input (files, options, checkpoints)."""


class DataError(SVDDError):
    """A data file is missing, corrupt, empty or holds letters outside its alphabet."""


class CheckpointError(SVDDError):
    """A checkpoint is missing, corrupt, or belongs to another domain or model."""


class ConfigError(SVDDError):
    """An option has a value the program cannot use."""


class RewardError(SVDDError):
    """A reward raised, or returned NaN/inf or the wrong shape, while decoding."""
