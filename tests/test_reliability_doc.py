"""docs/reliability.md: at least 25 bad or odd inputs, each shown by a test that exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_row_names_a_test_that_exists():
    rows = [line for line in (ROOT / "docs" / "reliability.md").read_text().splitlines()
            if line.startswith("| ") and not line.startswith("| input") and
            not line.startswith("| fault") and "test_" in line]
    assert len(rows) >= 25
    for row in rows:
        cited = re.findall(r"`(test_\w+\.py)::(test_\w+)`", row)
        assert cited, row
        for file, name in cited:
            source = (ROOT / "tests" / file).read_text()
            assert re.search(rf"^def {name}\(", source, re.M), f"{file}::{name} ({row[:60]})"
