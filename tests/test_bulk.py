from __future__ import annotations

import datetime as dt
import io
import itertools
from collections import Counter

import httpx
import pytest
import respx
from PIL import Image

from recraft_async._bulk import Batch, Work, params_for, work_from_entry
from recraft_async._inputs import InputItem
from recraft_async._journal import Journal, JournalState, fingerprint
from recraft_async._models import Operation, Result, TaskRecord, TaskState
from recraft_async._progress import Reporter
from recraft_async.errors import SubmissionUncertainError, TaskFailedError

UP = Operation.UPSCALE
PARAMS: dict[str, object] = {}  # the market dialect (the default) takes an image only


def png(size=(300, 300), colour=(10, 20, 30)):
    """A real PNG."""
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


class FakeClient:
    """Stands in for AsyncRecraft with a journal: journals its submits like the real one."""

    def __init__(self, *, fail=(), uncertain=()):
        self.journal = None
        self.submits = Counter()
        self.resumed = []
        self.fail = set(fail)
        self.uncertain = set(uncertain)
        self._ids = itertools.count(1)

    def upscale(self, source, **params):
        """Pretend to submit; the coroutine is the job."""
        self.submits[str(source)] += 1
        return self._submit(source, params)

    def resume(self, task_id, _operation):
        """Pretend to poll an earlier task."""
        self.resumed.append(task_id)
        return self._finish(None, task_id)

    async def _submit(self, source, params):
        params = params_for(UP, params)
        fp = fingerprint(UP, source, params)
        await self.journal.mark_submitting(fp, UP, str(source), params)
        if source.name in self.uncertain:
            await self.journal.mark_uncertain(fp, "read timeout")
            raise SubmissionUncertainError("read timeout", operation=UP, image=str(source))
        task_id = f"task-{next(self._ids)}"
        await self.journal.mark_submitted(fp, task_id)
        try:
            result = await self._finish(source.name, task_id)
        except TaskFailedError as exc:
            await self.journal.mark_failed(fp, str(exc))
            raise
        await self.journal.mark_succeeded(fp, result.urls)
        return result

    async def _finish(self, name, task_id):
        if name in self.fail:
            raise TaskFailedError("nope", task_id=task_id, state="failed", code=501)
        record = TaskRecord(task_id, TaskState.SUCCESS, (f"https://results.test/{task_id}.png",))
        now = dt.datetime.now(dt.timezone.utc)
        return Result(task_id, UP, record.result_urls, now, now, record, name)


@pytest.fixture
def results():
    """Result URLs answer a PNG."""
    with respx.mock(assert_all_called=False) as mock:
        mock.get(url__startswith="https://results.test/").respond(
            200, content=png((600, 600)), headers={"Content-Type": "image/png"}
        )
        yield mock


def inputs(tmp_path, *names):
    """Image files in an input folder, as works."""
    folder = tmp_path / "in"
    folder.mkdir(exist_ok=True)
    works = []
    for i, name in enumerate(names):
        path = folder / name
        path.write_bytes(png(colour=(i, i, i)))
        works.append(Work(InputItem(name, path=path), UP, PARAMS))
    return works


async def run(tmp_path, client, works):
    """One batch run with a fresh journal connection."""
    async with Journal(tmp_path / "j.sqlite") as journal, httpx.AsyncClient() as http:
        client.journal = journal
        batch = Batch(client, journal, http, out_dir=tmp_path / "out",
                      reporter=Reporter(io.StringIO()), concurrency=4)  # fmt: skip
        outcomes = await batch.run(works)
        entries = await journal.entries()
    return outcomes, entries


@pytest.mark.anyio
async def test_batch_processes_and_journals_everything(tmp_path, results):
    """Every input is submitted once, downloaded under its own name, and DOWNLOADED."""
    client = FakeClient()
    works = inputs(tmp_path, "a.png", "b.png", "c.png")
    outcomes, entries = await run(tmp_path, client, works)
    assert [(o.label, o.state) for o in outcomes] == [
        (n, "done") for n in ("a.png", "b.png", "c.png")
    ]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png", "c.png"]
    assert {e.state for e in entries} == {JournalState.DOWNLOADED}
    assert set(client.submits.values()) == {1}
    # A second run finds everything done: nothing is submitted again.
    again = FakeClient()
    outcomes, _ = await run(tmp_path, again, works)
    assert [o.state for o in outcomes] == ["done"] * 3
    assert not again.submits
    assert not again.resumed


@pytest.mark.anyio
async def test_bad_inputs_fail_alone(tmp_path, results):
    """A missing file, a non-image and a failed task fail with reasons; the rest succeed."""
    works = inputs(tmp_path, "ok.png", "bad.png")
    gif = tmp_path / "in" / "x.gif"
    Image.new("RGB", (300, 300)).save(gif, "GIF")
    works += [
        Work(InputItem("x.gif", path=gif), UP, PARAMS),
        Work(InputItem("gone.png", problem="gone.png: no such file or folder"), UP, PARAMS),
    ]
    client = FakeClient(fail={"bad.png"})
    outcomes, entries = await run(tmp_path, client, works)
    states = {o.label: (o.state, o.error) for o in outcomes}
    assert states["ok.png"] == ("done", None)
    assert states["bad.png"][0] == "failed"
    assert "nope" in states["bad.png"][1]
    assert states["x.gif"] == ("failed", f"{gif}: not a PNG, JPEG or WEBP image")
    assert states["gone.png"] == ("failed", "gone.png: no such file or folder")
    assert sorted(e.state for e in entries) == [JournalState.DOWNLOADED, JournalState.FAILED]


@pytest.mark.anyio
async def test_uncertain_is_never_resubmitted(tmp_path, results):
    """An uncertain submit stays uncertain on the next run, with no second submit."""
    works = inputs(tmp_path, "u.png")
    outcomes, entries = await run(tmp_path, FakeClient(uncertain={"u.png"}), works)
    assert outcomes[0].state == "uncertain"
    assert entries[0].state is JournalState.UNCERTAIN
    again = FakeClient()
    outcomes, _ = await run(tmp_path, again, works)
    assert outcomes[0].state == "uncertain"
    assert not again.submits


@pytest.mark.anyio
async def test_resume_polls_submitted_and_downloads_succeeded(tmp_path, results):
    """SUBMITTED entries are polled by task id, SUCCEEDED ones only downloaded."""
    works = inputs(tmp_path, "s.png", "d.png")
    fps = [fingerprint(UP, w.item.path, w.params) for w in works]
    async with Journal(tmp_path / "j.sqlite") as journal:
        for work, fp in zip(works, fps, strict=True):
            await journal.mark_submitting(fp, UP, str(work.item.path), work.params)
        await journal.mark_submitted(fps[0], "task-old")
        await journal.mark_submitted(fps[1], "task-done")
        await journal.mark_succeeded(fps[1], ["https://results.test/task-done.png"])
        pending = [work_from_entry(e) for e in await journal.entries()]
    client = FakeClient()
    outcomes, entries = await run(tmp_path, client, pending)
    assert [o.state for o in outcomes] == ["done", "done"]
    assert client.resumed == ["task-old"]
    assert not client.submits
    assert {e.state for e in entries} == {JournalState.DOWNLOADED}


@pytest.mark.anyio
async def test_deleted_output_is_downloaded_again(tmp_path, results):
    """A DOWNLOADED entry whose file is gone is fetched again, not resubmitted."""
    works = inputs(tmp_path, "a.png")
    outcomes, _ = await run(tmp_path, FakeClient(), works)
    outcomes[0].output.unlink()
    again = FakeClient()
    outcomes, _ = await run(tmp_path, again, works)
    assert outcomes[0].state == "done"
    assert outcomes[0].output.is_file()
    assert not again.submits


@pytest.mark.anyio
async def test_same_image_under_two_names_is_submitted_once(tmp_path, results):
    """Identical bytes are one fingerprint: one submit, both inputs reported done."""
    works = inputs(tmp_path, "a.png")
    copy = tmp_path / "in" / "copy.png"
    copy.write_bytes(works[0].item.path.read_bytes())
    works.append(Work(InputItem("copy.png", path=copy), UP, PARAMS))
    client = FakeClient()
    outcomes, entries = await run(tmp_path, client, works)
    assert [(o.label, o.state) for o in outcomes] == [("a.png", "done"), ("copy.png", "done")]
    assert outcomes[0].output == outcomes[1].output
    assert sum(client.submits.values()) == 1
    assert len(entries) == 1
