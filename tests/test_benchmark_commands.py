"""Every benchmark table reproduces from the command it lists: each table of docs/benchmarks.md
(and the README's default-run table) names the command that wrote it, and that command, run in
smoke mode into a temporary page, still writes a table with the same markers, the same command
line and the same column header. A table whose script now writes other columns, or whose
command no longer parses, fails here. Commands that need a GPU are only parsed."""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
from helpers import require_decoder

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
DOCS = ROOT / "docs" / "benchmarks.md"
PAGES = (DOCS, ROOT / "README.md")
MARKERS = re.compile(r"^<!-- (?P<name>.+?): start -->\n(?P<body>.*?)^<!-- (?P=name): end -->",
                     re.S | re.M)
COMMAND = re.compile(r"`(python benchmarks/\w+\.py(?: [^`]*)?)`")
GPU_OPTIONS = {"--gpu", "--nvdec"}  # these commands measure on a GPU; their smoke runs cannot
FAST_SCRIPTS = {"clip_profile.py"}  # smoke runs of seconds; the others train or prepare data


@dataclass(frozen=True)
class Block:
    """A table's block of a page: the text of its markers, the command it lists (the first
    ``python benchmarks/...`` in backticks) and its column header (None: no table yet)."""

    name: str
    command: str | None
    header: str | None

    @property
    def words(self) -> list[str]:
        return shlex.split(self.command or "")

    @property
    def script(self) -> str:
        return Path(self.words[1]).name

    @property
    def needs_gpu(self) -> bool:
        return bool(GPU_OPTIONS & set(self.words))


def blocks(text: str) -> dict[str, Block]:
    """Every marked block of a page, by the text of its markers."""
    found = {}
    for match in MARKERS.finditer(text):
        command = COMMAND.search(match["body"].replace("\n", " "))
        header = next((line for line in match["body"].splitlines() if line.startswith("| ")),
                      None)
        found[match["name"]] = Block(match["name"], command and command[1], header)
    return found


def page_blocks() -> list[tuple[Path, Block]]:
    """Every table's block, with its page."""
    return [(page, block) for page in PAGES for block in blocks(page.read_text()).values()]


def block_id(case: tuple[Path, Block]) -> str:
    """A test id: the page and the text of the block's markers."""
    return re.sub(r"[^\w.-]+", "_", f"{case[0].name}:{case[1].name}")


def load_script(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """``benchmarks/<name>`` imported as a module (its own imports found in benchmarks/)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(f"benchmark_{Path(name).stem}",
                                                  BENCHMARKS / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse(words: list[str], monkeypatch: pytest.MonkeyPatch) -> argparse.Namespace:
    """The arguments of ``python benchmarks/<script> ...`` as the script's parser reads them."""
    assert words[0] == "python" and (BENCHMARKS / Path(words[1]).name).is_file(), words
    parser = load_script(Path(words[1]).name, monkeypatch).build_parser()
    parser.prog = shlex.join(words[:2])
    try:
        return parser.parse_args(words[2:])
    except SystemExit:
        pytest.fail(f"`{shlex.join(words)}` does not parse: {parser.format_usage()}")


def smoke_run(block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Block]:
    """Run the block's command with ``--smoke --docs <tmp page>`` (and ``--out`` at
    ``tmp_path / "out"``, where the script has one); the blocks it wrote. What the run
    measured is checked by the script's entry in ``RESULTS`` (when it has one)."""
    page = tmp_path / "page.md"
    extra = ["--smoke", "--docs", str(page)]
    if "out" in vars(parse(block.words, monkeypatch)):
        extra += ["--out", str(tmp_path / "out")]
    pages = [page.read_text() for page in PAGES]
    result = subprocess.run([sys.executable, *block.words[1:], *extra], cwd=ROOT,
                            capture_output=True, text=True, timeout=1200,
                            env={**os.environ, "WANDB_MODE": "disabled"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert [page.read_text() for page in PAGES] == pages, "a smoke run wrote a page"
    assert page.is_file(), f"`{block.command} --smoke` wrote no table"
    check = RESULTS.get(block.script)
    if check is not None:
        check(tmp_path / "out", result.stdout)
    return blocks(page.read_text())


def _read(path: Path) -> dict:
    return json.loads(path.read_text())


def _temporal(out: Path, _: str) -> None:
    results = _read(out / "results.json")
    assert set(results) == {"tsm", "st_adapter_frozen"}  # a row of each of its tables
    assert all(0 <= row["test_top1"] <= 1 for row in results.values())


def _tsm_defaults(out: Path, _: str) -> None:
    results = _read(out / "smoke" / "results.json")
    assert set(results) == {"0.2 defaults", "defaults"}
    assert all(0 <= row["test_top1"] <= 1 for row in results.values())


def _adapter_budget(out: Path, _: str) -> None:
    results = _read(out / "smoke" / "results.json")
    assert set(results) == {"tsm", "st_adapter"}
    assert all(0 <= row["test_top1"] <= 1 for row in results.values())
    assert results["st_adapter"]["trainable_share"] < results["tsm"]["trainable_share"] == 1


def _recipes(out: Path, _: str) -> None:
    with open(out / "smoke" / "comparison" / "results.csv", newline="") as file:
        rows = {row["recipe"]: row for row in csv.DictReader(file)}
    assert set(rows) == {"probe", "full_tsm"}
    for row in rows.values():
        assert row["status"] == "done"
        assert all(0 <= float(row[f"test/top1 {v}"]) <= 1 for v in ("1x1", "3x1", "3x3"))


def _feature_cache(out: Path, _: str) -> None:
    results = _read(out / "smoke" / "results.json")
    assert set(results) == {"decoded video", "cached features"}
    assert all(row["epoch_seconds"] > 0 for row in results.values())


def _data_throughput(out: Path, _: str) -> None:
    rows = _read(out / "smoke.json")["rows"]
    assert set(rows) == {"video", "frames_threads", "stream"}  # no device rows without a GPU
    assert all(row["loader_clips_per_s"] > 0 for row in rows.values())
    assert all(row["loader_over_bare_loop"] == pytest.approx(
        row["loader_clips_per_s"] / row["bare_loop_clips_per_s"]) for row in rows.values())


def _precision(out: Path, _: str) -> None:
    rows = _read(out / "smoke.json")["rows"]
    assert all(row["model_clips_per_s"] > 0 for row in rows.values())


def _default_run(out: Path, _: str) -> None:
    results = _read(out / "smoke.json")
    assert 0 <= results["metrics"]["test/top1"] <= 1 and results["wall_seconds"] > 0


def _decoders(_: Path, printed: str) -> None:
    for backend in ("decord", "torchcodec", "pyav"):
        assert f"| {backend} | " in printed


# What each smoke run measured, checked beyond its table (the run's --out folder, its stdout).
RESULTS: dict[str, Callable[[Path, str], None]] = {
    "temporal.py": _temporal, "tsm_defaults.py": _tsm_defaults,
    "adapter_budget.py": _adapter_budget, "recipes.py": _recipes,
    "feature_cache.py": _feature_cache, "data_throughput.py": _data_throughput,
    "precision.py": _precision, "default_run.py": _default_run, "decoders.py": _decoders}


def test_pages_have_their_tables():
    found = {block.name for _, block in page_blocks()}
    assert {"benchmarks/temporal.py --epochs 16 efficient", "benchmarks/data_throughput.py",
            "benchmarks/default_run.py"} <= found


@pytest.mark.parametrize("case", page_blocks(), ids=block_id)
def test_every_table_names_a_command_that_parses(case, monkeypatch):
    page, block = case
    assert block.command, f"{page.name}: the block {block.name} names no python benchmarks/..."
    assert block.name.startswith(f"benchmarks/{block.script}"), "markers name their script"
    parse(block.words, monkeypatch)


def test_gpu_check_commands_parse(monkeypatch):
    """benchmarks/gpu_check.sh is valid bash and each script command in it parses."""
    script = BENCHMARKS / "gpu_check.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text().replace("\\\n", " ")
    commands = re.findall(r"^step \w+ \d+ (python benchmarks/.*)$", text, re.M)
    assert len(commands) == 4, commands
    for command in commands:
        parse(shlex.split(command), monkeypatch)


def smoke_cases() -> list:
    """Every block; slow unless its smoke run takes seconds or is skipped (a GPU command)."""
    fast = [case[1].script in FAST_SCRIPTS or case[1].needs_gpu for case in page_blocks()]
    return [pytest.param(case, id=block_id(case), marks=[] if quick else [pytest.mark.slow])
            for case, quick in zip(page_blocks(), fast)]


@pytest.mark.parametrize("case", smoke_cases())
def test_table_command_writes_the_same_table(case, tmp_path, monkeypatch, request):
    page, block = case
    assert block.command, f"{page.name}: the block {block.name} names no python benchmarks/..."
    if block.needs_gpu:
        pytest.skip(f"`{block.command}` measures on a GPU (none here); its command is parsed "
                    "by test_every_table_names_a_command_that_parses")
    if block.script in ("real_transfer.py", "recipes.py"):
        request.getfixturevalue("shared_ucf101")  # their --data default: skip where absent
    if block.script == "decoders.py":
        require_decoder("torchcodec")
    written = smoke_run(block, tmp_path, monkeypatch)
    assert block.name in written, f"`{block.command} --smoke` wrote only {sorted(written)}"
    assert written[block.name].command == block.command
    if block.header is not None:  # a block without one waits for its first (GPU) run
        assert written[block.name].header == block.header
    else:
        assert written[block.name].header is not None
