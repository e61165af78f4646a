"""``custom_imports``: the user's own modules, imported by name before anything is built.

A research project keeps its temporal modules, LightningModule subclasses and dataset formats in
its own package (``mylab.temporal``...) and names them in configs by ``_target_``. Listing
those modules in ``custom_imports=[mylab.temporal, ...]``:

- imports them before any config object is built (a missing one is an error that says how to
  make it importable);
- when a module is not importable as installed, looks for it in the folder the command was
  started from, as ``python -m`` would: a project run from its own folder needs no
  ``PYTHONPATH`` (``pip install -e .`` makes it importable from anywhere);
- is stored with the run's config in every checkpoint;
- trusts the listed modules' names when a command loads a checkpoint: its saved config may
  then name them as ``_target_`` (see :mod:`vidtl.core.trusted_targets`). A checkpoint's own
  list is never trusted: the command that loads it must declare the same modules.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from vidtl.core.errors import UserError

log = logging.getLogger(__name__)


class CustomImportError(UserError):
    """A module listed in ``custom_imports`` cannot be imported."""


def import_custom(modules: Sequence[str] | None, start_dir: str | Path | None = None
                  ) -> list[str]:
    """Import every module of ``modules`` (dotted names); a module that is not importable as
    installed is looked up in ``start_dir`` too (default: the current folder). Return the
    names, to be trusted as ``_target_`` prefixes."""
    names = [str(name).strip() for name in modules or () if str(name).strip()]
    folder = str(Path(start_dir or Path.cwd()).resolve())
    for name in names:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as error:
            missing = (error.name or "").split(".")[0]
            if missing != name.split(".")[0]:
                raise  # the user's module imports a package that is not installed
            local = Path(folder) / missing
            if folder in sys.path or not (local.is_dir() or local.with_suffix(".py").is_file()):
                raise CustomImportError(
                    f"custom_imports: cannot import {name!r} ({error}); install the project "
                    f"that holds it (pip install -e <project folder>) or start the command "
                    f"from the folder that holds {missing!r}") from None
            sys.path.insert(0, folder)
            log.info("custom_imports: %s found in %s (added to the import path)", name, folder)
            importlib.import_module(name)
        log.info("custom_imports: imported %s", name)
    return names
