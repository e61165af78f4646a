"""What every benchmark script shares: its command-line options, the command line its table shows,
the machine it ran on, and writing the table into docs/benchmarks.md (or the README) between the
script's own markers."""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "benchmarks.md"
# The shared data beside the checkout (../shared), or $VIDTL_SHARED as for the tests.
SHARED = Path(os.environ.get("VIDTL_SHARED") or REPO.parent / "shared")
# Options a table's command leaves out: they say where files go (--out, --docs), which rows run
# now (--rows: a table keeps the rows of earlier runs, each listed with its own command), or
# that finished rows are scored again (--reuse); --smoke runs write only to a --docs given.
NOT_SHOWN = ("--smoke", "--docs", "--out", "--rows", "--reuse")


def benchmark_parser(doc: str, smoke: str, page: Path = DOCS) -> argparse.ArgumentParser:
    """A script's parser with the options every script has: ``--smoke`` (``smoke`` says what it
    runs) and ``--docs``. Options cannot be abbreviated, so a table's command shows them whole."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--smoke", action="store_true",
                        help=f"{smoke}; checks the script (tests), writes a table only to --docs")
    parser.add_argument("--docs", type=Path,
                        help=f"the page the table is written to (default {relative(page)}; "
                             "a --smoke run writes none without it)")
    return parser


def docs_page(args: argparse.Namespace, page: Path = DOCS) -> Path | None:
    """Where this run writes its table: ``--docs``, else ``page``; nowhere for a --smoke run
    without ``--docs``."""
    return args.docs or (None if args.smoke else page)


def relative(text: object) -> str:
    """``text`` with the checkout's paths relative to it (and its parent's as ``../``)."""
    return str(text).replace(f"{REPO}/", "").replace(f"{REPO.parent}/", "../")


def table_command(argv: list[str] | None = None) -> str:
    """The command line a table shows: ``python benchmarks/<script>`` with the arguments this
    process was started with (``sys.argv``), less the options of NOT_SHOWN and their values
    (the scripts take no positional arguments), paths made relative to the checkout."""
    argv = sys.argv if argv is None else argv
    words, dropping = [f"python benchmarks/{Path(argv[0]).name}"], False
    for word in argv[1:]:
        if word.startswith("-"):
            dropping = word.split("=", 1)[0] in NOT_SHOWN
        if not dropping:
            words.append(relative(word))
    return " ".join(words)


def table_key(smoke: bool) -> str:
    """What the rows of one table share, recorded with each row: the table's command (and
    whether it was a smoke run). A table is written from the rows of its own key only, so rows
    that an earlier run recorded with other arguments never join it."""
    return table_command() + (" --smoke" if smoke else "")


def machine(python: bool = False) -> str:
    """This machine: CPU, cores, GPU (or "no GPU"), torch and, with ``python``, Python."""
    import torch

    cpu = platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    text = f"{cpu}, {os.cpu_count()} CPU cores, {gpu}, torch {torch.__version__}"
    return text + (f", Python {platform.python_version()}" if python else "")


def command_list(commands: dict[str, str]) -> list[str]:
    """The lines under a table that give each row's full command."""
    return ["", "Commands (from the repository root):", "",
            *[f"- {row}: `{command}`" for row, command in commands.items()]]


def write_section(lines: list[str], start: str, end: str, docs: Path | None = DOCS) -> None:
    """Replace the block from ``start`` to ``end`` in ``docs`` (docs/benchmarks.md) with
    ``lines`` (which include both markers), or append it when the markers are not there yet
    (a new page is made); with ``docs`` None, write nothing."""
    if docs is None:
        return
    text = docs.read_text() if docs.exists() else ""
    block = "\n".join(lines)
    if start in text:
        text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, text,
                      flags=re.S)
    else:
        text = (text.rstrip() + "\n\n" if text.strip() else "") + block + "\n"
    docs.write_text(text)
