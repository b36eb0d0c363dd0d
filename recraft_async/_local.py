"""Local images and the journal inside a job's flow: upload before submit, write-ahead around it.

The scheduler calls these at four points of a job: ``recall`` (before anything is sent:
what does the journal already know?), ``upload`` (a local file becomes a URL),
``submitting`` / ``submitted`` (around the submit request, inside its shield) and
``finished`` (the outcome). Without a journal and with a URL input, none of it runs.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import attrs

from ._check import SubmitRequest, check_remove_background, check_upscale
from ._files import probe_image_bytes, probe_image_file, upload_image
from ._journal import Journal, JournalState, fingerprint
from ._models import Operation, Result, TaskRecord, TaskState
from .errors import InvalidInputError, SubmissionUncertainError, TaskFailedError

if TYPE_CHECKING:
    from ._files import JsonTransport
    from ._jobs import Job

# SubmitRequest wants a URL; a local image has one only after its upload. ".invalid" is a
# reserved name that can never resolve, so this placeholder can never be sent anywhere.
PENDING_UPLOAD_URL = "https://upload.pending.invalid/"
_S = JournalState


@attrs.frozen
class LocalImage:
    """An image given as a file or bytes, uploaded when its job starts."""

    name: str
    path: Path | None = None
    data: bytes | None = attrs.field(default=None, repr=False)

    @property
    def source(self) -> str:
        """What the journal and Result.source record: the absolute path, or the name."""
        return str(self.path) if self.path is not None else self.name

    async def read(self) -> bytes:
        """The image's bytes (a file is read off the event loop)."""
        if self.data is not None:
            return self.data
        assert self.path is not None  # noqa: S101 - one of the two is always set
        try:
            return await anyio.Path(self.path).read_bytes()
        except OSError as exc:
            raise InvalidInputError(f"{self.path}: cannot be read ({exc.strerror})") from None


def local_image(image: object, operation: Operation) -> tuple[str, LocalImage | None]:
    """Check ``image`` (URL str, Path or bytes): the URL to submit, or a LocalImage to upload."""
    if isinstance(image, Path):
        probe_image_file(image, operation)
        return PENDING_UPLOAD_URL, LocalImage(image.name, path=image.resolve())
    if isinstance(image, (bytes, bytearray, memoryview)):
        data = bytes(image)
        info = probe_image_bytes(data, operation, name="image bytes")
        extension = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}[info.format]
        return PENDING_UPLOAD_URL, LocalImage(f"image.{extension}", data=data)
    return image, None  # type: ignore[return-value]  # check_url says what is wrong


def journal_params(request: SubmitRequest) -> dict[str, Any]:
    """The parameters that change a job's output; the callback URL does not."""
    if request.operation is Operation.UPSCALE:
        return {"scale": request.scale, "format": request.format}
    return {"output_format": request.output_format}


def params_for(operation: Operation, options: dict[str, Any]) -> dict[str, Any]:
    """Journal parameters of ``client.upscale(x, **options)`` (or remove_background)."""
    if operation is Operation.UPSCALE:
        request = check_upscale(
            PENDING_UPLOAD_URL, options.get("scale", 2), options.get("format", "png"), None
        )
    else:
        request = check_remove_background(
            PENDING_UPLOAD_URL, options.get("output_format", "png"), None
        )
    return journal_params(request)


async def job_fingerprint(job: Job) -> str:
    """The journal key of a fresh job (a file is hashed off the event loop)."""
    assert job.request is not None  # noqa: S101 - fresh jobs carry their request
    params = journal_params(job.request)
    local = job.local
    if local is None:
        return fingerprint(job.operation, job.request.image_url, params)
    if local.path is not None:
        return await anyio.to_thread.run_sync(fingerprint, job.operation, local.path, params)
    return fingerprint(job.operation, await local.read(), params)


async def recall(journal: Journal, job: Job) -> Result | None:
    """What the journal knows of ``job``: a Result, a task id to poll (set on the job), or None.

    Raises SubmissionUncertainError for an input whose earlier submit may have landed.
    """
    job.fingerprint = await job_fingerprint(job)
    entry = await journal.get(job.fingerprint)
    if entry is None:
        return None
    if entry.state is _S.UNCERTAIN:
        raise SubmissionUncertainError(
            f"{job.source}: an earlier submit may have created a task ({entry.error}); "
            "not sent again, to avoid paying twice",
            operation=job.operation,
            image=job.source or "",
        )
    if entry.state in (_S.SUCCEEDED, _S.DOWNLOADED) and entry.task_id and entry.result_urls:
        record = TaskRecord(entry.task_id, TaskState.SUCCESS, entry.result_urls)
        return Result(entry.task_id, job.operation, entry.result_urls, None,
                      entry.updated_at.astimezone(dt.timezone.utc), record, job.source)  # fmt: skip
    if entry.state is _S.SUBMITTED and entry.task_id:
        job._mark_submitted(entry.task_id)
    return None


async def upload(transport: JsonTransport, upload_base_url: str, job: Job) -> None:
    """Upload a local image and point the job's request at the uploaded copy."""
    assert job.local is not None  # noqa: S101 - only local jobs upload
    assert job.request is not None  # noqa: S101
    url = await upload_image(transport, upload_base_url, await job.local.read(), job.local.name)
    job.request = attrs.evolve(job.request, image_url=url)


async def submitting(journal: Journal, job: Job) -> None:
    """Commit the intent to submit (call inside the submit's shield, before sending)."""
    assert job.request is not None  # noqa: S101
    if job.fingerprint is None:
        job.fingerprint = await job_fingerprint(job)
    source = job.source or job.request.image_url
    params = journal_params(job.request)
    await journal.mark_submitting(job.fingerprint, job.operation, source, params)


async def submitted(journal: Journal, job: Job) -> None:
    """Record the task id the moment it is known."""
    if job.fingerprint is not None and job.task_id is not None:
        await journal.mark_submitted(job.fingerprint, job.task_id)


async def finished(journal: Journal, job: Job, outcome: Result | BaseException) -> None:
    """Record how a journalled job ended; shielded, so a cancelled run still records it."""
    fp = job.fingerprint
    if fp is None:
        return
    with anyio.CancelScope(shield=True):
        entry = await journal.get(fp)
        if entry is None:
            return
        if isinstance(outcome, Result):
            if entry.state is _S.SUBMITTED:
                await journal.mark_succeeded(fp, outcome.urls)
        elif isinstance(outcome, SubmissionUncertainError):
            if entry.state is _S.SUBMITTING:
                await journal.mark_uncertain(fp, str(outcome))
        elif entry.state in (_S.PENDING, _S.SUBMITTING) or (
            entry.state is _S.SUBMITTED and isinstance(outcome, TaskFailedError)
        ):
            # A submitted task that merely timed out or lost its connection stays SUBMITTED:
            # it may still finish, and `resume` polls it instead of paying again.
            await journal.mark_failed(fp, str(outcome))
