"""Printing a user error as one line and exiting, without a traceback."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import TypeVar

from vidtl.core.errors import UserError

log = logging.getLogger(__name__)

T = TypeVar("T")

USER_ERRORS: tuple[type[Exception], ...] = (UserError, FileNotFoundError, FileExistsError)


def exit_on_user_error(fn: Callable[..., T]) -> Callable[..., T]:
    """Print a user error as ``error: <message>`` and exit with status 2, without a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as error:
            log.error("%s", error)
            print(f"error: {error}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None

    return wrapper
