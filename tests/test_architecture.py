"""The package's shape, as docs/architecture.md draws it: imports run down the layers only,
files and functions stay short."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "vidtl"

# Each package may import its own layer's packages (without circles) and those below.
LAYERS = [
    ["vidtl.data", "vidtl.core"],  # a package face and the base
    ["vidtl.data.annotations", "vidtl.data.frames", "vidtl.models"],
    ["vidtl.data.clips", "vidtl.finetune", "vidtl.evaluation"],
    ["vidtl.data.shards", "vidtl.data.loading", "vidtl.timeline"],
    ["vidtl.data.tools", "vidtl.callbacks", "vidtl.sweeps"],
    ["vidtl.training"],
    ["vidtl.assembly"],
    ["vidtl.inference"],
    ["vidtl.cli"],
    ["vidtl"],  # the package face (vidtl.load)
]
LAYER = {name: depth for depth, names in enumerate(LAYERS) for name in names}


def package_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:3] if parts[:2] == ["vidtl", "data"] and len(parts) > 2
                    else parts[:2])


def sources(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if ".venv" not in p.parts)


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def vidtl_imports(path: Path) -> set[str]:
    imports = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("vidtl"):
            imports.add(node.module)
        elif isinstance(node, ast.Import):
            imports |= {a.name for a in node.names if a.name.startswith("vidtl")}
    return imports


def test_every_package_has_a_layer():
    packages = {package_of(module_name(p)) for p in sources(PACKAGE)}
    assert packages <= set(LAYER), f"place {sorted(packages - set(LAYER))} in LAYERS"


def test_imports_run_down_the_layers():
    upward = []
    for path in sources(PACKAGE):
        own = package_of(module_name(path))
        for imported in vidtl_imports(path):
            if LAYER[package_of(imported)] > LAYER[own]:
                upward.append(f"{path.relative_to(ROOT)} imports {imported}")
    assert not upward


def test_no_import_circles_between_packages():
    edges: dict[str, set[str]] = {}
    for path in sources(PACKAGE):
        own = package_of(module_name(path))
        edges.setdefault(own, set()).update(
            package_of(i) for i in vidtl_imports(path) if package_of(i) != own)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n}))
                   for n in edges.get(start, ()))

    assert not [p for p in edges if reaches(p, p, {p})]


@pytest.mark.parametrize("folder", ["vidtl", "benchmarks", "experiments"])
def test_files_and_functions_stay_short(folder):
    too_long = []
    for path in sources(ROOT / folder):
        text = path.read_text()
        if len(text.splitlines()) > 400:
            too_long.append(f"{path.relative_to(ROOT)}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > 60:
                    too_long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: "
                                    f"{length} lines")
    assert not too_long
