"""Writing a benchmark's table into docs/benchmarks.md (or the README), between the script's own
markers."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def write_section(lines: list[str], start: str, end: str, docs: Path = DOCS) -> None:
    """Replace the block from ``start`` to ``end`` in ``docs`` (docs/benchmarks.md) with
    ``lines`` (which include both markers), or append it when the markers are not there yet."""
    text = docs.read_text()
    block = "\n".join(lines)
    if start in text:
        text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, text,
                      flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    docs.write_text(text)
