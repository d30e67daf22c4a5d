"""The tutorials (docs/tutorials/*.py, jupytext percent scripts) in a real Jupyter kernel: a
training cell run a second time in the same kernel neither fails nor adds entries to Pyro's
parameter store, and ppdgm's figures show inline. Every tutorial runs whole, cell by cell, when
the site is built (tests/test_docs.py): a failing cell fails that build."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext", reason="the notebooks extra is not installed")
nbclient = pytest.importorskip("nbclient", reason="the notebooks extra is not installed")
nbformat = pytest.importorskip("nbformat", reason="the notebooks extra is not installed")
pytest.importorskip("ipykernel", reason="the notebooks extra is not installed")

TUTORIALS = Path(__file__).resolve().parents[1] / "docs" / "tutorials"


def _client(path: Path, cwd: Path):
    notebook = jupytext.read(path)
    return notebook, nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                             resources={"metadata": {"path": str(cwd)}})


def _text(cell) -> str:
    return "".join(out.get("text", "") for out in cell.get("outputs", []) if out["output_type"] == "stream")


def _images(cell) -> int:
    return sum("image/png" in out.get("data", {}) for out in cell.get("outputs", []))


def test_a_figure_written_in_a_notebook_is_shown_inline_and_returned(tmp_path):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import torch\n"
        "from ppdgm.diagnostics import save_image_grid\n"
        "path = save_image_grid(torch.rand(4, 1, 8, 8), 'grid.png')\n"
        "print(path.name, path.exists())")])
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    cell = notebook.cells[0]
    assert _images(cell) == 1 and _text(cell).strip() == "grid.png True"


def test_running_a_training_cell_twice_neither_fails_nor_grows_the_param_store(tmp_path):
    notebook, client = _client(TUTORIALS / "first_vae.py", tmp_path)
    training = next(i for i, cell in enumerate(notebook.cells)
                    if "training" in cell.metadata.get("tags", []))
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells[:training + 1]):
            client.execute_cell(cell, index)
        first = _text(notebook.cells[training])
        client.execute_cell(notebook.cells[training], training)
        second = _text(notebook.cells[training])
    store = [re.search(r"parameter store entries: (\d+)", text) for text in (first, second)]
    assert store[0] and store[1] and store[0].group(1) == store[1].group(1)
    # A fresh model and the same seed: the re-run prints the same loss.
    loss = [re.search(r"per image: ([-\d.]+)", text).group(1) for text in (first, second)]
    assert loss[0] == loss[1]
