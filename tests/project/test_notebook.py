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


def test_an_interrupted_cell_leaves_the_client_and_its_jobs_running(tmp_path, monkeypatch):
    """The stop button on a cell awaiting: that await is cancelled, the job is not."""
    import nbformat  # noqa: PLC0415 - test extra, imported by this module's tests only
    from nbclient import NotebookClient  # noqa: PLC0415 - test extra, as above
    from nbformat.v4 import new_code_cell, new_notebook  # noqa: PLC0415 - as above

    (tmp_path / "cat.png").write_bytes(red_circle())
    cells = [
        "from pathlib import Path\nimport anyio\nimport recraft_async as ra",
        "client = await ra.AsyncRecraft().open()",
        # Interrupted. ipykernel cancels the cell when its event loop next wakes up: the
        # short sleeps wake it, as a long job's reads do.
        "job = client.upscale(Path('cat.png'))\nwhile True:\n    await anyio.sleep(0.05)",
        "result = await job\nprint(job.status.value, repr(client))",
        "await client.aclose()\nprint(repr(client))",
    ]
    nb = new_notebook(cells=[new_code_cell(source) for source in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.validate(nb)
    with emulator_process("--time-scale", "0.01") as base_url:
        monkeypatch.setenv("KIE_BASE_URL", base_url)
        monkeypatch.setenv("KIE_API_KEY", EMULATOR_KEY)
        NotebookClient(
            nb,
            kernel_name="python3",
            # Only the sleeping cell runs into its timeout, which interrupts the kernel.
            timeout_func=lambda cell: 3 if "while True" in cell.source else 120,
            interrupt_on_timeout=True,
            allow_errors=True,
            resources={"metadata": {"path": str(tmp_path)}},
        ).execute()
    errors = [
        (i, o.ename)
        for i, cell in enumerate(nb.cells)
        for o in cell.outputs
        if o.output_type == "error"
    ]
    assert errors == [(2, "CancelledError")]
    printed = [
        "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        for cell in nb.cells
    ]
    assert printed[3].startswith("succeeded")
    assert "state=open" in printed[3]
    assert "state=closed" in printed[4]
