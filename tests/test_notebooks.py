"""The quickstart notebook runs top to bottom, and is committed without outputs."""

from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stripped(path):
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes(path, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.setenv("WANDB_MODE", "disabled")
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]


def test_the_rendered_page_shows_the_notebooks_current_code():
    """docs/<notebook>.md, written with its outputs by notebooks/render.py, holds every code
    cell of the notebook as it is now (rerun the script after changing the notebook)."""
    import importlib.util

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("render", root / "notebooks" / "render.py")
    render = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render)
    for path in NOTEBOOKS:
        page = (root / "docs" / f"{path.stem}.md").read_text()
        missing = [c.splitlines()[0] for c in render.code_cells(path)
                   if f"```python\n{c}\n```" not in page]
        assert not missing, f"docs/{path.stem}.md is stale: python notebooks/render.py"
        assert "```text\n" in page  # it shows outputs
