"""The CSV logger of a run that can be resumed: its ``metrics.csv`` keeps every attempt's rows.

Lightning's ``CSVLogger`` deletes the run folder's ``metrics.csv`` when a resumed run starts
logging, so the curves of the attempts before it are gone. :class:`ResumableCSVLogger` is the
same logger, except that a run resumed at step ``resume_step`` keeps the earlier rows whose step
comes before it (the rows an interrupted attempt logged after its last checkpoint are dropped:
the resumed run logs those steps again), so the file holds every step once, in order.
"""

from __future__ import annotations

import csv
import io
import logging
from typing import Any

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

from vidtl.core.safe_files import read_text

log = logging.getLogger(__name__)


class _HistoryWriter(ExperimentWriter):
    """Lightning's writer, with the rows of earlier attempts before ``resume_step`` kept."""

    def __init__(self, log_dir: str, resume_step: int | None) -> None:
        earlier = _earlier_rows(f"{log_dir}/{self.NAME_METRICS_FILE}", resume_step)
        self._resuming = resume_step is not None
        super().__init__(log_dir=log_dir)  # (deletes the old file)
        self.metrics.extend(earlier)  # written with the first save, before the new rows
        if earlier:
            log.info("csv logger: kept %d rows of the earlier attempts (steps before %d)",
                     len(earlier), resume_step)


    def _check_log_dir_exists(self) -> None:
        """Lightning's check, without its warning that the earlier rows are lost when a
        resumed run keeps them."""
        if not self._resuming:
            super()._check_log_dir_exists()
        elif self._fs.isfile(self.metrics_file_path):
            self._fs.rm_file(self.metrics_file_path)


def _earlier_rows(path: str, resume_step: int | None) -> list[dict[str, Any]]:
    """The rows of ``path`` whose step comes before ``resume_step`` (none for a fresh run)."""
    if resume_step is None:
        return []
    try:
        rows = list(csv.DictReader(io.StringIO(read_text(path, what="metrics file"))))
    except (OSError, ValueError):
        return []
    kept = []
    for row in rows:
        try:
            step = int(float(row.get("step") or "nan"))
        except ValueError:
            continue
        if step < resume_step:
            kept.append({key: value for key, value in row.items() if value not in ("", None)})
    return kept


class ResumableCSVLogger(CSVLogger):
    """``CSVLogger`` (``logger=csv``) whose ``metrics.csv`` survives resumes: see the module
    docstring. ``resume_step`` is the global step the run resumes at (``None``: a fresh run)."""

    def __init__(self, *args: Any, resume_step: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.resume_step = resume_step

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _HistoryWriter(self.log_dir, self.resume_step)
        return self._experiment
