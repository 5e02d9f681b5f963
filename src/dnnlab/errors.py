"""Errors a user can fix. The CLI prints them as one line, without a traceback."""


class DnnlabError(Exception):
    """Base class: the message says what is wrong and what to do."""


class ConfigError(DnnlabError, ValueError):
    """An invalid setting (unknown activation, depth 0, negative learning rate...)."""


class DataError(DnnlabError):
    """The dataset is missing, truncated, corrupted or cannot be downloaded."""
