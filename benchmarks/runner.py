"""The loop every benchmark script runs: measure each row, print it and record it at once (a row
that fails later loses none before it), then write the table of this run's rows between the
table's markers, with the machine and the command that wrote it."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from docs_section import REPO, machine, relative, table_command, table_key, write_section


@dataclass(frozen=True)
class Table:
    """A table's block of a page: the lines between ``<!-- NAME: start -->`` and
    ``<!-- NAME: end -->`` (NAME: ``benchmarks/<script>``, and what tells its tables apart)."""

    name: str

    @property
    def start(self) -> str:
        return f"<!-- {self.name}: start -->"

    @property
    def end(self) -> str:
        return f"<!-- {self.name}: end -->"

    def write(self, lines: list[str], docs: Path | None) -> list[str]:
        """Write ``lines`` between the markers into ``docs`` (None: nowhere); the block."""
        block = [self.start, *lines, self.end]
        write_section(block, self.start, self.end, docs)
        return block


def written_by(machine_text: str | None = None, date: str | None = None) -> str:
    """A table's first words: ``Machine: <machine>. Written by `<command>` on <date>`` (this
    machine and today by default)."""
    return (f"Machine: {machine_text or machine()}. Written by `{table_command()}` on "
            f"{date or time.strftime('%Y-%m-%d')}")


def read_results(results_file: Path | None) -> dict[str, dict]:
    """The rows ``results_file`` holds (none without one)."""
    if results_file is None or not results_file.exists():
        return {}
    return json.loads(results_file.read_text())


def record(results_file: Path, name: str, row: dict) -> dict[str, dict]:
    """Add ``row`` to ``results_file`` (re-read first, so that several processes running other
    rows of the same benchmark keep each other's rows); return every row."""
    results = {**read_results(results_file), name: row}
    partial = results_file.with_suffix(".partial")
    partial.write_text(json.dumps(results, indent=2))
    partial.replace(results_file)  # nothing lost if a row fails
    return results


def run_rows(names: Iterable[str], run_row: Callable[[str], dict],
             results_file: Path | None = None,
             show: Callable[[str, dict], str] = lambda _, row: json.dumps(row)) -> dict[str, dict]:
    """Run each row (``run_row(name)``), print it (``show``) and record it in ``results_file``;
    every row of the file (with earlier runs' rows), or of this run without a file."""
    results = read_results(results_file)
    for name in names:
        row = run_row(name)
        print(show(name, row), flush=True)
        results = record(results_file, name, row) if results_file else {**results, name: row}
    return results


def this_table(results: dict[str, dict], order: Iterable[str], smoke: bool) -> list[dict]:
    """The rows of ``results`` in ``order`` that were recorded for the table of this command
    (its :func:`table_key`): rows run with other arguments never join it."""
    return [results[name] for name in order
            if results.get(name, {}).get("table") == table_key(smoke)]


def save_results(path: Path, results: dict) -> None:
    """``results`` as indented JSON at ``path`` (its folder made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")


def run_json(command: list[str]) -> dict:
    """Run a vidtl command from the checkout; the JSON object on its last line of output."""
    result = subprocess.run(command, check=True, cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, "WANDB_MODE": "disabled"})
    return json.loads(result.stdout.strip().splitlines()[-1])


def console_command(command: list[str]) -> str:
    """How a table shows ``python -m vidtl.cli.<name> ARGS``: as its console script,
    ``vidtl-<name> ARGS`` (underscores as dashes), paths relative to the checkout."""
    module = command[2].rsplit(".", 1)[-1]
    return relative(" ".join([f"vidtl-{module.replace('_', '-')}", *command[3:]]))


def command_row(command: list[str]) -> dict:
    """A row of one vidtl command (``python -m vidtl.cli.<name> ARGS``): its JSON result, and
    the command as the table shows it."""
    return {**run_json(command), "command": console_command(command)}
