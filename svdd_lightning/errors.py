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


def data_error(path: object, problem: str, fix: str, *, kind: str = "data file") -> DataError:
    """The one shape of a data error: ``"<kind> <path> <problem> <fix>"``: which file, what is wrong with it, what
    to do. ``problem`` reads on from the path ("is empty (0 bytes)."; ", line 3: ..." or ": ..." to point inside
    the file, no space before) and ends with its own punctuation; ``fix`` is the sentence that says what to do."""
    joint = "" if problem[:1] in ",:" else " "
    return DataError(f"{kind} {path}{joint}{problem} {fix}")
