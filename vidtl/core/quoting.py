"""Quoting what a file says in a message, unless a checkpoint named the file.

An error that quotes the offending line of a list helps the user who wrote the list. But a
checkpoint can name any readable file as a list (``data.train_list=/home/me/.netrc``), and its
lines must not reach the terminal, the run's log or W&B. While a dataset named by a checkpoint
is read (inside :func:`content_withheld`), :func:`quote` gives a placeholder instead of the
text; messages still name the file, the line and what was expected.
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

WITHHELD = "(content withheld: a checkpoint named this file, not the command line)"
_QUOTING: ContextVar[bool] = ContextVar("vidtl_quote_file_content", default=True)


def quote(text: object, limit: int = 200) -> str:
    """``repr(text)``, shortened (nested values and long strings cut, whatever their size),
    or :data:`WITHHELD`."""
    if not _QUOTING.get():
        return WITHHELD
    shortener = reprlib.Repr()  # (keyword arguments only from Python 3.12)
    shortener.maxlevel, shortener.maxlist, shortener.maxdict, shortener.maxlong = 2, 4, 4, 40
    shortener.maxstring = shortener.maxother = limit
    shown = shortener.repr(text)
    return shown if len(shown) <= limit else shown[:limit] + "..."


def printable(text: object) -> str:
    """``text`` with every control character (a terminal's escape sequences among them) shown
    as its ``\\x..`` escape: what a file or a checkpoint names is printed, never obeyed."""
    shown = str(text)
    if shown.isprintable():
        return shown
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in shown)


def quoting() -> bool:
    """Whether messages may quote file content here."""
    return _QUOTING.get()


@contextmanager
def content_withheld(withhold: bool = True) -> Iterator[None]:
    """Inside the block (when ``withhold``), :func:`quote` quotes nothing."""
    token = _QUOTING.set(not withhold and _QUOTING.get())
    try:
        yield
    finally:
        _QUOTING.reset(token)
