"""Execute a notebook and write it, with its outputs, as a markdown page in ``docs/``.

    python notebooks/render.py [notebooks/quickstart.ipynb] [docs/quickstart.md]

The notebook itself stays committed without outputs (small diffs); the page shows what each
cell printed to stdout and displayed on the machine that rendered it (logs on stderr are left
out; images go to ``docs/<name>_files/``). ``tests/test_notebooks.py`` checks that the page
holds the notebook's current code.
"""

from __future__ import annotations

import base64
import os
import platform
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# rich's notice that Jupyter lacks ipywidgets (printed to stdout, wrapped over three lines)
WIDGETS_NOTICE = re.compile(
    r"^\S*rich/live\.py:\d+: UserWarning.*\n(?:.*\n)*?\s+warnings\.warn\(.*\n", re.MULTILINE)


def output_text(output: dict) -> str | None:
    """The text of a stdout stream, result or error output, without terminal colours
    (``None`` for images and for stderr: logs and library warnings)."""
    if output["output_type"] == "stream":
        if output["name"] == "stderr":
            return None
        return ANSI.sub("", output["text"])
    if output["output_type"] == "error":
        return ANSI.sub("", "\n".join(output["traceback"]))
    data = output.get("data", {})
    if "image/png" in data:
        return None
    return ANSI.sub("", data["text/plain"]) if "text/plain" in data else None


def render(notebook_path: Path, page: Path) -> Path:
    """Execute ``notebook_path`` in a temporary folder and write ``page``."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(notebook_path, as_version=4)
    os.environ.setdefault("WANDB_MODE", "disabled")
    with tempfile.TemporaryDirectory() as folder:
        NotebookClient(notebook, timeout=900, kernel_name="python3",
                       resources={"metadata": {"path": folder}}).execute()
    images = page.parent / f"{page.stem}_files"
    parts = [f"<!-- written by python notebooks/render.py from {notebook_path.name}; "
             f"rendered on {platform.machine()}, Python {platform.python_version()}. -->\n"]
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "markdown":
            parts.append(cell.source.strip() + "\n")
            continue
        parts.append("```python\n" + cell.source.strip() + "\n```\n")
        text = "".join(t for o in cell.outputs if (t := output_text(o)) is not None)
        text = WIDGETS_NOTICE.sub("", text).strip()
        if text:
            parts.append("```text\n" + text + "\n```\n")
        for number, output in enumerate(o for o in cell.outputs
                                        if "image/png" in o.get("data", {})):
            images.mkdir(parents=True, exist_ok=True)
            image = images / f"cell{index}_{number}.png"
            image.write_bytes(base64.b64decode(output["data"]["image/png"]))
            parts.append(f"![output of cell {index}]({images.name}/{image.name})\n")
    page.write_text("\n".join(parts))
    return page


def code_cells(notebook_path: Path) -> list[str]:
    """The code of every code cell (what the page must show)."""
    import nbformat

    notebook = nbformat.read(notebook_path, as_version=4)
    return [c.source.strip() for c in notebook.cells if c.cell_type == "code"]


if __name__ == "__main__":
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "notebooks" / "quickstart.ipynb"
    target = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "docs" / f"{source.stem}.md"
    print(render(source, target))
