"""Local inputs (paths, bytes), the journal wired into the client, and downloads."""

import json
import sqlite3

import anyio
import httpx
import pytest
from conftest import (
    MARKET_READ,
    MARKET_SUBMIT,
    envelope,
    image_bytes,
    market_record,
    wait_for,
    wait_until,
)

import recraft_async as ra
from recraft_async._core._identity import fingerprint

pytestmark = pytest.mark.anyio
UPLOADS = "https://uploads.test"


def _mock_upload(kie, url="https://files.test/u/a.png"):
    return kie.post(f"{UPLOADS}/api/file-stream-upload").respond(
        json={
            "success": True,
            "code": 200,
            "msg": "ok",
            "data": {"downloadUrl": url, "fileName": "a.png"},
        }
    )


async def test_path_input_is_uploaded_then_submitted(kie, make_client, tmp_path):
    """A local file is uploaded and its downloadUrl becomes image_url."""
    path = tmp_path / "photo.png"
    path.write_bytes(image_bytes((64, 48)))
    upload = _mock_upload(kie)
    submit = kie.post(MARKET_SUBMIT).respond(json=envelope({"taskId": "t1"}))
    kie.get(MARKET_READ).respond(json=market_record("t1"))
    async with make_client(upload_base_url=UPLOADS) as client:
        result = await client.upscale(path)
    sent_input = json.loads(submit.calls.last.request.content)["input"]
    assert sent_input["image"] == "https://files.test/u/a.png"
    sent = upload.calls.last.request
    assert sent.headers["authorization"] == "Bearer sk-test-secret-123"
    assert b'name="file"; filename="photo.png"' in sent.content
    assert result.source == str(path)


async def test_bytes_input_is_uploaded(kie, make_client):
    """Image bytes are uploaded like a file."""
    upload = _mock_upload(kie)
    kie.post(MARKET_SUBMIT).respond(json=envelope({"taskId": "t1"}))
    kie.get(MARKET_READ).respond(json=market_record("t1", model="recraft/remove-background"))
    async with make_client(upload_base_url=UPLOADS) as client:
        await client.remove_background(image_bytes())
    assert upload.call_count == 1


@pytest.mark.parametrize(
    ("content", "operation", "why"),
    [
        (b"GIF89a....", "upscale", "not a PNG, JPEG or WEBP"),
        (None, "upscale", "no such file"),
        ("small", "remove_background", "256"),
    ],
)
async def test_bad_local_files_raise_before_sending(
    kie, make_client, tmp_path, content, operation, why
):
    """A missing, non-image or out-of-limits file raises InvalidInputError naming it."""
    path = tmp_path / "input.png"
    if content == "small":
        path.write_bytes(image_bytes((100, 100)))
    elif content is not None:
        path.write_bytes(content)
    async with make_client(upload_base_url=UPLOADS) as client:
        with pytest.raises(ra.InvalidInputError, match=why) as caught:
            getattr(client, operation)(path)
    assert "input.png" in str(caught.value)
    assert not kie.calls


async def test_journal_write_ahead_then_task_id(kie, make_client, tmp_path):
    """SUBMITTING is committed before the submit leaves; the task id right after."""
    seen = []
    url = "https://i.test/a.png"
    # The default dialect sends no scale or format: the input's key holds none.
    fp = fingerprint(ra.Operation.UPSCALE, url, {"scale": None, "format": ""})
    async with ra.Journal(tmp_path / "j.db") as journal:

        async def submit(request):
            entry = await journal.get(fp)
            assert entry is not None
            seen.append(entry.state)
            return httpx.Response(200, json=envelope({"taskId": "t1"}))

        kie.post(MARKET_SUBMIT).mock(side_effect=submit)
        kie.get(MARKET_READ).respond(json=market_record("t1"))
        async with make_client(journal=journal) as client:
            await client.upscale(url)
        entry = await journal.get(fp)
    assert seen == [ra.JournalState.SUBMITTING]
    assert entry is not None
    assert (entry.state, entry.task_id, entry.result_urls) == (
        ra.JournalState.SUCCEEDED,
        "t1",
        ("https://cdn.test/o.png",),
    )


async def test_journal_resumes_instead_of_resubmitting(kie, make_client, tmp_path):
    """A second run of the same input polls the journalled task and submits nothing."""
    submit = kie.post(MARKET_SUBMIT).respond(json=envelope({"taskId": "t1"}))
    kie.get(MARKET_READ).respond(json=market_record("t1"))
    for _ in range(2):
        async with make_client(journal=ra.Journal(tmp_path / "j.db")) as client:
            result = await client.upscale("https://i.test/a.png")
        assert result.task_id == "t1"
    assert submit.call_count == 1


async def test_journal_keeps_uncertain_submits_uncertain(kie, make_client, tmp_path):
    """An uncertain submit is journalled, and a rerun refuses to resubmit it."""
    submit = kie.post(MARKET_SUBMIT).mock(side_effect=httpx.ReadTimeout("lost"))
    for _ in range(2):
        async with make_client(journal=ra.Journal(tmp_path / "j.db")) as client:
            with pytest.raises(ra.SubmissionUncertainError):
                await client.upscale("https://i.test/a.png")
    assert submit.call_count == 1
    async with ra.Journal(tmp_path / "j.db") as journal:
        [entry] = await journal.entries()
    assert entry.state is ra.JournalState.UNCERTAIN


async def test_journal_lets_refused_submits_run_again(kie, make_client, tmp_path):
    """A definite refusal is FAILED in the journal, and a rerun may submit again."""
    submit = kie.post(MARKET_SUBMIT).mock(
        side_effect=[
            httpx.Response(200, json=envelope(None, 402, "no credits")),
            httpx.Response(200, json=envelope({"taskId": "t2"})),
        ]
    )
    kie.get(MARKET_READ).respond(json=market_record("t2"))
    async with make_client(journal=ra.Journal(tmp_path / "j.db")) as client:
        with pytest.raises(ra.InsufficientCreditsError):
            await client.upscale("https://i.test/a.png")
        assert (await client.journal.entries())[0].state is ra.JournalState.FAILED
    # A 402 stops the client that met it; a new one (credits topped up) submits again.
    async with make_client(journal=ra.Journal(tmp_path / "j.db")) as client:
        assert (await client.upscale("https://i.test/a.png")).task_id == "t2"
    assert submit.call_count == 2


async def test_client_leaves_a_journal_it_did_not_open(kie, make_client, tmp_path):
    """A journal the caller opened stays open after the client closes."""
    async with ra.Journal(tmp_path / "j.db") as journal:
        async with make_client(journal=journal):
            pass
        assert journal.is_open
    own = ra.Journal(tmp_path / "k.db")
    async with make_client(journal=own):
        assert own.is_open
    assert not own.is_open


async def test_download_streams_without_the_key(kie, make_client, tmp_path):
    """download() writes the image under a safe name and never sends our key there."""
    image = image_bytes((64, 48))
    cdn = kie.get("https://cdn.test/out/x.png").respond(
        content=image, headers={"Content-Type": "image/png"}
    )
    kie.post(MARKET_SUBMIT).respond(json=envelope({"taskId": "t1"}))
    kie.get(MARKET_READ).respond(json=market_record("t1", urls=("https://cdn.test/out/x.png",)))
    async with make_client() as client:
        result = await client.upscale("https://i.test/shots/../../etc/passwd.png")
        path = await client.download(result, tmp_path / "out")
    assert path.parent == tmp_path / "out"
    assert path.name == "passwd.png"
    assert path.read_bytes() == image
    assert "authorization" not in cdn.calls.last.request.headers
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["passwd.png"]


async def _journal_holds(journal, state):
    """Whether the journal holds one entry in ``state`` (and any others)."""
    return [entry.state for entry in await journal.entries()].count(state) == 1


async def test_waiting_for_a_submit_slot_is_not_uncertain(kie, make_client, tmp_path):
    """A run stopped while a job waits for its rate slot leaves that input unsent, not UNCERTAIN."""
    kie.post(MARKET_SUBMIT).respond(json=envelope({"taskId": "t1"}))
    kie.get(MARKET_READ).respond(json=market_record("t1", state="generating"))

    class Stop(Exception):
        pass

    journal = ra.Journal(tmp_path / "j.db")
    with pytest.raises(Stop):
        async with make_client(journal=journal, submit_rate=ra.Rate(1, per=60.0)) as client:
            jobs = [client.upscale(f"https://i.test/{i}.png") for i in (1, 2)]
            await wait_for(lambda: _journal_holds(journal, ra.JournalState.SUBMITTED))
            raise Stop
    [sent] = [job for job in jobs if job.task_id]
    async with ra.Journal(tmp_path / "j.db") as reopened:
        states = {entry.source: entry.state for entry in await reopened.entries()}
    assert states == {sent.source: ra.JournalState.SUBMITTED}


async def test_uploads_stay_on_a_loopback_base_url(kie, tmp_path):
    """With a loopback base_url and no upload_base_url, uploads go to the same server."""
    assert (
        ra.AsyncRecraft(api_key="k", base_url="http://127.0.0.1:8123").upload_base_url
        == "http://127.0.0.1:8123"
    )
    assert ra.AsyncRecraft(api_key="k").upload_base_url.startswith("https://")
    assert (
        "127.0.0.1"
        not in ra.AsyncRecraft(api_key="k", base_url="https://api.kie.ai").upload_base_url
    )


async def test_the_wait_after_a_429_leaves_the_input_resumable(kie, make_client, tmp_path):
    """During the pause a 429 imposes, the journal says PENDING, not SUBMITTING."""
    submit = kie.post(MARKET_SUBMIT).respond(
        429, json={"code": 429, "msg": "Rate limit exceeded"}, headers={"Retry-After": "30"}
    )

    class Stop(Exception):
        pass

    with pytest.raises(Stop):
        async with make_client(journal=ra.Journal(tmp_path / "j.db")) as client:
            client.upscale("https://i.test/a.png")
            await wait_until(lambda: submit.call_count >= 1)
            # The refusal is journalled inside the shielded send: SUBMITTING goes back to
            # PENDING once it is handled (a journal left SUBMITTING fails the wait).
            await wait_for(lambda: _journal_holds(client.journal, ra.JournalState.PENDING))
            raise Stop
    async with ra.Journal(tmp_path / "j.db") as reopened:
        [entry] = await reopened.entries()
    assert entry.state is ra.JournalState.PENDING


async def test_the_wait_after_a_455_refusal_leaves_the_input_resumable(
    kie, make_client, tmp_path, monkeypatch
):
    """KIE's 455 envelope refuses like a 429: during the wait after it the entry is PENDING."""
    import recraft_async._core._policy as policy_module  # noqa: PLC0415 - its backoff is stretched

    submit = kie.post(MARKET_SUBMIT).respond(200, json={"code": 455, "msg": "Service unavailable"})
    # A long wait before the resend, as a 429's Retry-After gives: the state is read in it.
    monkeypatch.setattr(policy_module, "retry_delay", lambda *_args, **_kwargs: 30.0)

    class Stop(Exception):
        pass

    with pytest.raises(Stop):
        async with make_client(journal=ra.Journal(tmp_path / "j.db")) as client:
            client.upscale("https://i.test/a.png")
            while submit.call_count < 1:
                await anyio.sleep(0.01)
            # Not a time bound on the code: a guard so that a regression fails, not hangs.
            with anyio.fail_after(20):
                while [e.state for e in await client.journal.entries()] != [
                    ra.JournalState.PENDING
                ]:
                    await anyio.sleep(0.01)
            assert submit.call_count == 1  # still in the wait, not resent yet
            raise Stop
    async with ra.Journal(tmp_path / "j.db") as reopened:
        [entry] = await reopened.entries()
    assert entry.state is ra.JournalState.PENDING


async def test_a_failing_journal_write_after_the_send_never_fails_the_job(
    kie, make_client, tmp_path, monkeypatch, caplog
):
    """The task is paid for: a journal that cannot record it is logged, the job succeeds."""
    kie.post(MARKET_SUBMIT).respond(json=envelope({"taskId": "t1"}))
    kie.get(MARKET_READ).respond(json=market_record("t1"))

    async def broken(*_args):
        raise sqlite3.OperationalError("disk I/O error")

    async with make_client(journal=ra.Journal(tmp_path / "j.db")) as client:
        monkeypatch.setattr(client.journal, "mark_submitted", broken)
        monkeypatch.setattr(client.journal, "mark_succeeded", broken)
        result = await client.upscale("https://i.test/a.png")
    assert result.task_id == "t1"
    assert "a journal write failed" in caplog.text


async def test_a_journal_that_cannot_take_the_intent_stops_the_send(
    kie, make_client, tmp_path, monkeypatch
):
    """Write-ahead: if the intent to submit cannot be journalled, nothing is sent."""
    submit = kie.post(MARKET_SUBMIT).respond(json=envelope({"taskId": "t1"}))

    async def broken(*_args):
        raise sqlite3.OperationalError("database is locked")

    async with make_client(journal=ra.Journal(tmp_path / "j.db")) as client:
        monkeypatch.setattr(client.journal, "mark_submitting", broken)
        with pytest.raises(ra.JournalStateError, match="nothing was sent"):
            await client.upscale("https://i.test/a.png")
    assert submit.call_count == 0


async def test_a_broken_journal_database_stops_the_send(kie, make_client, tmp_path):
    """The journal's own SQLite failure (a table gone) also stops the send, typed."""
    submit = kie.post(MARKET_SUBMIT).respond(json=envelope({"taskId": "t1"}))
    async with make_client(journal=ra.Journal(tmp_path / "j.db")) as client:
        await client.journal._run(lambda conn: conn.execute("DROP TABLE entries"))
        with pytest.raises(ra.JournalStateError, match="no such table"):
            await client.upscale("https://i.test/a.png")
    assert submit.call_count == 0
