from __future__ import annotations

import datetime as dt
import io
import itertools
from collections import Counter

import httpx
import pytest
import respx
from conftest import image_bytes
from PIL import Image

from recraft_async._bulk._batch import Batch, Work, work_from_entry
from recraft_async._bulk._inputs import InputItem
from recraft_async._bulk._journal import Journal, JournalState
from recraft_async._bulk._ledger import Ledger
from recraft_async._bulk._progress import Reporter
from recraft_async._bulk_client import BulkRecraft
from recraft_async._core._check import check_upscale
from recraft_async._core._identity import identify_request
from recraft_async._core._models import Operation, Result, TaskRecord, TaskState
from recraft_async._core._record import NullLedger
from recraft_async.errors import (
    InvalidInputError,
    RecraftError,
    SubmissionUncertainError,
    TaskFailedError,
)

UP = Operation.UPSCALE
PARAMS: dict[str, object] = {}  # the market dialect (the default) takes an image only


class FakeClient:
    """Stands in for an open BulkRecraft and its seam: its jobs write the journal's ledger."""

    dialect = "market"

    def __init__(self, *, fail=(), uncertain=()):
        self.ledger = NullLedger()
        self.submits: Counter[str] = Counter()
        self.resumed = []
        self.links: list[str] = []
        self.fail = set(fail)
        self.uncertain = set(uncertain)
        self._ids = itertools.count(1)

    def next_submit_in(self):
        """Never throttled: no wait for the submit rate (None)."""

    def submit(self, request, identity):
        """Pretend to submit; the coroutine is the job."""
        self.submits[request.source] += 1
        return self._live(request, identity)

    def resume(self, task_id, _operation):
        """Pretend to poll an earlier task."""
        self.resumed.append(task_id)
        return self._finish(None, task_id)

    async def _live(self, request, identity):
        """A job's life as the scheduler lives it, in short."""
        record = await self.ledger.open(request, identity)
        try:
            await record.before_submit()
            if request.local.name in self.uncertain:
                raise SubmissionUncertainError("read timeout", operation=UP, image=request.source)
            task_id = f"task-{next(self._ids)}"
            await record.submitted(task_id)
            result = await self._finish(request.local.name, task_id)
        except RecraftError as exc:
            await record.failed(exc)
            raise
        await record.succeeded(result)
        return result

    async def download_url(self, url):
        """Pretend to be KIE's download-url endpoint: a fresh link, on another path."""
        self.links.append(url)
        return url.replace("https://results.test/", "https://results.test/fresh/")

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
            200, content=image_bytes((600, 600)), headers={"Content-Type": "image/png"}
        )
        yield mock


def inputs(tmp_path, *names):
    """Image files in an input folder, as works."""
    folder = tmp_path / "in"
    folder.mkdir(exist_ok=True)
    works = []
    for i, name in enumerate(names):
        path = folder / name
        path.write_bytes(image_bytes(colour=(i, i, i)))
        works.append(Work(InputItem(name, path=path), UP, PARAMS))
    return works


async def run(tmp_path, client, works):
    """One batch run with a fresh journal connection."""
    async with Journal(tmp_path / "j.sqlite") as journal, httpx.AsyncClient() as http:
        client.ledger = Ledger(journal)
        batch = Batch(client, client, http, out_dir=tmp_path / "out",
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
    # Reasons alone: the summary names each input once, beside them.
    assert states["x.gif"] == ("failed", "not a PNG, JPEG or WEBP image")
    assert states["gone.png"] == ("failed", "no such file or folder")
    assert states["bad.png"][1] == "task failed: nope (code 501)"
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
    async with Journal(tmp_path / "j.sqlite") as journal:
        requests = [check_upscale(w.item.path, None, None, None, dialect="market") for w in works]
        fps = [(await identify_request(request)).key for request in requests]
        for request, fp in zip(requests, fps, strict=True):
            await journal.mark_submitting(fp, UP, request.source, request.params)
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


@pytest.mark.anyio
async def test_a_client_without_a_journal_has_no_bulk_seam():
    """A bulk run records through the client's ledger: a client without a journal has none."""
    client = BulkRecraft(api_key="k-1", base_url="http://127.0.0.1:9")
    async with client:
        with pytest.raises(InvalidInputError, match="needs a client with a journal"):
            client.bulk_seam()


@pytest.mark.anyio
async def test_a_resumed_task_that_failed_is_recorded_failed(tmp_path, results):
    """A SUBMITTED input whose task failed is FAILED, recorded by the ledger, not resubmitted."""
    works = inputs(tmp_path, "bad.png")
    async with Journal(tmp_path / "j.sqlite") as journal:
        request = check_upscale(works[0].item.path, None, None, None, dialect="market")
        identity = await identify_request(request)
        await Ledger(journal).register(request, identity)
        fp = identity.key
        await journal.mark_submitting(fp, UP, request.source, request.params)
        await journal.mark_submitted(fp, "task-old")
    client = FakeClient()
    client.fail = {None}  # resumed tasks have no name here: this one fails
    outcomes, entries = await run(tmp_path, client, works)
    assert [o.state for o in outcomes] == ["failed"]
    assert client.resumed == ["task-old"]
    assert not client.submits
    assert [e.state for e in entries] == [JournalState.FAILED]


@pytest.mark.anyio
async def test_a_local_write_error_fails_its_input_alone_and_resume_finishes_it(
    tmp_path, results, monkeypatch
):
    """A disk-full place step fails one input with the reason; its task id stays for resume."""
    import errno  # noqa: PLC0415 - this test's own

    import recraft_async._core._files as files  # noqa: PLC0415 - the place step is patched here

    place = files._place

    def full_for_b(tmp, root, stem, ext, digest):
        if stem == "b":
            raise OSError(errno.ENOSPC, "No space left on device")
        return place(tmp, root, stem, ext, digest)

    monkeypatch.setattr(files, "_place", full_for_b)
    client = FakeClient()
    works = inputs(tmp_path, "a.png", "b.png", "c.png")
    outcomes, entries = await run(tmp_path, client, works)
    by_label = {o.label: o for o in outcomes}
    assert [by_label[n].state for n in ("a.png", "b.png", "c.png")] == ["done", "failed", "done"]
    failed = by_label["b.png"]
    assert failed.error == (
        "cannot save the result: No space left on device; `resume` downloads it again"
    )
    assert failed.kind == "DownloadWriteError"
    [entry] = [e for e in entries if e.source.endswith("b.png")]
    assert entry.state is JournalState.SUCCEEDED
    assert entry.task_id == failed.task_id
    assert entry.task_id is not None
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "c.png"]
    # The disk has room again: the paid task is downloaded, never submitted again.
    monkeypatch.setattr(files, "_place", place)
    again = FakeClient()
    outcomes, _ = await run(tmp_path, again, works)
    assert [o.state for o in outcomes] == ["done"] * 3
    assert not again.submits
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png", "c.png"]


@pytest.mark.anyio
async def test_an_output_folder_that_cannot_be_written_fails_each_input_alone(
    tmp_path, results, monkeypatch
):
    """A permission error making the partial file fails every input with one clear reason."""
    import errno  # noqa: PLC0415 - this test's own

    import recraft_async._core._files as files  # noqa: PLC0415 - the temp step is patched here

    def denied(_root, _tag):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(files, "_make_temp", denied)
    client = FakeClient()
    outcomes, entries = await run(tmp_path, client, inputs(tmp_path, "a.png", "b.png"))
    assert {(o.state, o.error) for o in outcomes} == {
        ("failed", "cannot save the result: Permission denied; `resume` downloads it again")
    }
    assert {e.state for e in entries} == {JournalState.SUCCEEDED}
    assert all(e.task_id for e in entries)


@pytest.mark.anyio
async def test_leftover_parts_of_other_journals_are_left_alone(tmp_path, results):
    """A run deletes the partial downloads of its own journal only, not another batch's."""
    from recraft_async._core._files import PART_PREFIX, PART_SUFFIX  # noqa: PLC0415

    out = tmp_path / "out"
    out.mkdir()
    async with Journal(tmp_path / "j.sqlite") as journal:
        mine = journal.part_tag
    async with Journal(tmp_path / "other.sqlite") as other:
        theirs = other.part_tag
    assert mine != theirs
    own = out / f"{PART_PREFIX}{mine}-abc123{PART_SUFFIX}"
    foreign = out / f"{PART_PREFIX}{theirs}-abc123{PART_SUFFIX}"
    untagged = out / f"{PART_PREFIX}k1l2m3{PART_SUFFIX}"  # a library download's
    for path in (own, foreign, untagged):
        path.write_bytes(b"half an image")
    outcomes, _ = await run(tmp_path, FakeClient(), inputs(tmp_path, "a.png"))
    assert [o.state for o in outcomes] == ["done"]
    assert not own.exists()
    assert foreign.exists()
    assert untagged.exists()


@pytest.mark.anyio
@pytest.mark.parametrize("status", [401, 403, 404, 410])
async def test_a_refused_result_url_is_fetched_by_a_fresh_link(tmp_path, status):
    """The result host refuses the plain URL: one fresh link from the client, and it is saved."""
    with respx.mock(assert_all_called=False) as mock:
        fresh = mock.get(url__startswith="https://results.test/fresh/").respond(
            200, content=image_bytes((600, 600)), headers={"Content-Type": "image/png"}
        )
        plain = mock.get(url__startswith="https://results.test/").respond(status)
        client = FakeClient()
        outcomes, entries = await run(tmp_path, client, inputs(tmp_path, "a.png"))
    assert [(o.state, o.error) for o in outcomes] == [("done", None)]
    assert client.links == ["https://results.test/task-1.png"]
    assert (plain.call_count, fresh.call_count) == (1, 1)
    assert [e.state for e in entries] == [JournalState.DOWNLOADED]
    assert (tmp_path / "out" / "a.png").is_file()


@pytest.mark.anyio
async def test_a_result_refused_twice_fails_typed_and_keeps_its_task_for_resume(tmp_path):
    """Plain URL and fresh link both refused: ResultUnavailableError, entry kept, unpaid retry."""
    with respx.mock(assert_all_called=False) as mock:
        mock.get(url__startswith="https://results.test/").respond(403)
        client = FakeClient()
        outcomes, entries = await run(tmp_path, client, inputs(tmp_path, "a.png"))
    [failed] = outcomes
    assert (failed.state, failed.kind) == ("failed", "ResultUnavailableError")
    assert failed.task_id == "task-1"
    assert "fresh link too (HTTP 403)" in (failed.error or "")
    assert len(client.links) == 1
    assert [(e.state, e.task_id) for e in entries] == [(JournalState.SUCCEEDED, "task-1")]
