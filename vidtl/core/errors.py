"""The error a user fixes by changing the command line, the config or the data.

Every command prints a :class:`UserError` as one line (``error: <message>``) and exits with
status 2, without a traceback. Its subclasses live beside the code that raises them (a dataset
layout, an unknown backbone, a checkpoint that does not fit).
"""

from __future__ import annotations


class UserError(ValueError):
    """Bad input that is not a bug: the message names the file, key or value and what was
    expected."""


def wrapped_user_error(error: BaseException) -> UserError | None:
    """The :class:`UserError` that ``error`` is, or that Hydra's ``instantiate`` wrapped in its
    ``InstantiationException`` (a refusal raised while a config was being built)."""
    cause: BaseException | None = error
    while type(cause).__name__ == "InstantiationException":
        cause = cause.__cause__ or cause.__context__
    return cause if isinstance(cause, UserError) else None
