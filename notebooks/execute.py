"""Run the notebooks top to bottom, offline, and store their outputs in place.

    python notebooks/execute.py            # every notebook
    python notebooks/execute.py 02_langchain.ipynb

The test suite runs each notebook afresh and checks that the outputs it makes have the same
shape as the stored ones (tests/test_notebooks.py), so stored outputs never go stale: rerun
this after changing a notebook or what it shows.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
OFFLINE = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "ORT_DISABLE_TELEMETRY": "1",
    "ANONYMIZED_TELEMETRY": "False",
    "TOKENIZERS_PARALLELISM": "false",
    # tqdm warns on import in a kernel without ipywidgets; that is not the notebook's output.
    # LangGraph 1.2 serialises the runtime context through a field typed None (its warning).
    "PYTHONWARNINGS": "ignore:IProgress not found,ignore:Pydantic serializer warnings",
}


def execute(path: Path, workdir: Path) -> nbformat.NotebookNode:
    """The notebook at ``path``, executed in ``workdir`` (its outputs filled in). The
    kernel inherits the offline environment; this process's is left as it was."""
    saved = {name: os.environ.get(name) for name in OFFLINE}
    os.environ.update(OFFLINE)
    try:
        notebook: nbformat.NotebookNode = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
        NotebookClient(
            notebook,
            timeout=300,
            kernel_name="python3",
            record_timing=False,  # no timestamps in the stored file: diffs show real changes
            resources={"metadata": {"path": str(workdir)}},
        ).execute()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return notebook


def main(names: list[str]) -> int:
    paths = [HERE / name for name in names] if names else sorted(HERE.glob("*.ipynb"))
    for path in paths:
        with tempfile.TemporaryDirectory() as workdir:
            notebook = execute(path, Path(workdir))
        nbformat.write(notebook, path)  # type: ignore[no-untyped-call]
        print(f"executed {path.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
