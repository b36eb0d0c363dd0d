"""examples/notebook.ipynb runs in a real Jupyter kernel (ipykernel, driven by nbclient)."""

from pathlib import Path
from typing import Any

import pytest
from conftest import EMULATOR_KEY, ROOT, emulator_process, red_circle

pytestmark = pytest.mark.slow

NOTEBOOK = ROOT / "examples" / "notebook.ipynb"


def _run(notebook: Path, folder: Path) -> Any:
    """Execute ``notebook`` cell after cell in a fresh python3 kernel, in ``folder``."""
    import nbformat  # noqa: PLC0415 - test extra, imported by this module's tests only
    from nbclient import NotebookClient  # noqa: PLC0415 - test extra, as above

    nb = nbformat.read(notebook, as_version=4)
    NotebookClient(
        nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(folder)}}
    ).execute()
    return nb


def test_the_notebook_opens_a_client_in_one_cell_and_uses_it_in_the_next(tmp_path, monkeypatch):
    """Every cell runs without error against the emulator and the images are saved."""
    (tmp_path / "cat.png").write_bytes(red_circle())
    with emulator_process("--time-scale", "0.01") as base_url:
        monkeypatch.setenv("KIE_BASE_URL", base_url)
        monkeypatch.setenv("KIE_API_KEY", EMULATOR_KEY)
        nb = _run(NOTEBOOK, tmp_path)
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "succeeded" in printed
    saved = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len(saved) == 2
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in (tmp_path / "out").iterdir())
    first = next(cell for cell in nb.cells if cell.cell_type == "code")
    assert "state=open" in first.outputs[0]["data"]["text/plain"]  # open after its cell
