"""The error a user fixes by changing the command line, the config or the data.

Every command prints a :class:`UserError` as one line (``error: <message>``) and exits with
status 2, without a traceback. Its subclasses live beside the code that raises them (a dataset
layout, an unknown backbone, a checkpoint that does not fit).
"""

from __future__ import annotations


class UserError(ValueError):
    """Bad input that is not a bug: the message names the file, key or value and what was
    expected."""
