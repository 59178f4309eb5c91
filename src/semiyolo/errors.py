"""Errors that mean "the user's input is wrong": the CLI prints their message, without a traceback."""


class UserInputError(ValueError):
    """Bad configuration, data or arguments; the message names the file, key or value and what was expected."""


class ConfigError(UserInputError):
    """A configuration file or override is invalid."""


class DataError(UserInputError):
    """A dataset, image folder or label file is missing or malformed."""


class TrainingDiverged(RuntimeError):
    """Training met too many consecutive non-finite losses; the message lists the last batch's files."""


class RunInterrupted(RuntimeError):
    """Training was interrupted (Ctrl-C); the message says where the resumable checkpoint is."""
