"""The notebooks run top to bottom, offline, and are stored with their outputs; a fresh run
makes outputs of the same shape as the stored ones (so they never go stale)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import nbformat
import pytest

NOTEBOOKS_DIR = Path(__file__).parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))


def _executor() -> Any:
    spec = importlib.util.spec_from_file_location("execute_notebooks", NOTEBOOKS_DIR / "execute.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _stderr(notebook: nbformat.NotebookNode) -> list[str]:
    return [
        output["text"]
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output["output_type"] == "stream" and output["name"] == "stderr"
    ]


def _shape(notebook: nbformat.NotebookNode) -> list[list[tuple[str, ...]]]:
    """Per code cell, the kind of each output: stdout, or the MIME types shown. Warnings
    on stderr are left out: a library may print one on some runs and not others. A run of
    stdout counts once: the kernel splits a stream where stderr interleaves, or by timing."""
    shapes = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        kinds = []
        for output in cell.get("outputs", []):
            if output["output_type"] == "stream":
                if output["name"] == "stdout" and kinds[-1:] != [("stream", "stdout")]:
                    kinds.append(("stream", "stdout"))
            else:
                kinds.append((output["output_type"], *sorted(output.get("data", {}))))
        shapes.append(kinds)
    return shapes


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_and_matches_its_stored_outputs(path: Path, tmp_path: Path) -> None:
    stored = nbformat.read(path, as_version=4)
    assert any(cell.get("outputs") for cell in stored.cells if cell.cell_type == "code"), (
        f"{path.name} is stored without outputs; run python notebooks/execute.py"
    )
    assert not _stderr(stored), f"{path.name} is stored with warnings: {_stderr(stored)}"
    fresh = _executor().execute(path, tmp_path)
    errors = [
        output
        for cell in fresh.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert not errors
    assert _shape(fresh) == _shape(stored), (
        f"{_shape(fresh)} != {_shape(stored)}: "
        f"{path.name}: a fresh run's outputs differ from the stored ones; "
        "run python notebooks/execute.py and review the diff"
    )
