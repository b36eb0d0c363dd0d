"""One bulk run: check every input, journal it, submit, wait, download; nothing paid twice.

An input whose output is already there is skipped, unpaid (see ``Batch``), unless the run
overwrites: an output file is placed under its final name only whole, so a file there is
complete.

The client's ledger is the one writer of the journal and the one owner of "resume or
submit": this run registers inputs through it, reads what it recorded, and asks its record
whether an input's task may be polled again. The run uses the client's public API and one
documented seam of it (``BulkSeam``; docs/guides/architecture.md).
"""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import anyio
import anyio.to_thread
import attrs

from recraft_async._core._check import SubmitRequest, check_remove_background, check_upscale
from recraft_async._core._download import save_result
from recraft_async._core._errors import (
    AuthenticationError,
    InsufficientCreditsError,
    InvalidInputError,
    JournalUnreadableError,
    RecraftError,
    SubmissionUncertainError,
)
from recraft_async._core._files import part_glob, safe_output_name
from recraft_async._core._identity import InputIdentity, identify_request
from recraft_async._core._models import Operation

from ._inputs import InputItem, is_url
from ._journal import JournalEntry, JournalState
from ._ledger import Ledger
from ._progress import FINAL, eta_seconds

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import httpx

    from recraft_async._core._check import DialectName
    from recraft_async._core._jobs import Job
    from recraft_async._core._models import Result
    from recraft_async._core._policy import PollPolicy, ProcessingTime, Rate
    from recraft_async._core._record import Record

    from ._progress import Reporter

_S = JournalState
# How often the reporter is told what the run waits on (the submit rate, the service).
STATUS_EVERY = 1.0
# Journal states that prove nothing was paid for an input: its existing output may stand.
_UNPAID = frozenset({_S.PENDING, _S.FAILED})
SKIPPED_REASON = "output exists"


class BulkSeam(Protocol):
    """What a bulk run needs of an open client beyond its public API (the facade's seam)."""

    @property
    def ledger(self) -> Ledger:
        """The client's journal ledger: the one writer, the owner of "resume or submit"."""
        ...

    def next_submit_in(self) -> float | None:
        """Seconds until a waiting submit may go, or None (see ``Scheduler.next_submit_in``)."""

    def submit(self, request: SubmitRequest, identity: InputIdentity) -> Job:
        """A job of ``request``, whose input's identity this run computed already."""
        ...


class BulkClient(Protocol):
    """The public face of ``AsyncRecraft`` that a bulk run reads and calls."""

    dialect: DialectName
    poll: PollPolicy
    submit_rate: Rate | None
    max_in_flight: int

    def processing_times(self) -> dict[Operation, ProcessingTime]:
        """The processing times learnt so far, per operation."""
        ...

    def resume(self, task_id: str, operation: Operation) -> Job:
        """A job polling a task submitted earlier."""
        ...

    async def download_url(self, result: Result | str) -> str:
        """A fresh link to a result."""
        ...


@attrs.frozen
class Work:
    """One input, and the keyword options of the client call to make on it."""

    item: InputItem
    operation: Operation
    options: Mapping[str, Any] = attrs.field(hash=False)


@attrs.frozen
class Outcome:
    """How one input ended: ``done``, ``skipped`` (its output was there), ``failed``, ``uncertain``.

    ``error`` is the reason alone: neither the input's label nor its task id, so that
    inputs failed for one reason can be told together; ``kind`` is the error's type.
    """

    label: str
    state: Literal["done", "skipped", "failed", "uncertain"]
    output: Path | None = None
    error: str | None = None
    task_id: str | None = None
    kind: str | None = None
    credits: float | None = None  # what the service said the task cost, if it said


def work_from_entry(entry: JournalEntry) -> Work:
    """Rebuild the work of a journal entry, for ``resume``."""
    if is_url(entry.source):
        item = InputItem(entry.source, url=entry.source)
    else:
        item = InputItem(entry.source, path=Path(entry.source))
    # Options left to the service are journalled as None or "": they are not passed again.
    options = {name: value for name, value in entry.params.items() if value not in (None, "")}
    return Work(item, entry.operation, options)


class Batch:
    """Runs works through an open client with a journal; see ``run``.

    An input the journal holds as unpaid (unknown, PENDING or FAILED) whose output name is
    taken in ``out_dir`` already is ``skipped``: neither journalled nor paid. With
    ``overwrite``, it is processed and its result replaces that file. An input the journal
    holds as paid is finished as ever (nothing paid twice), whatever the folder holds.
    """

    def __init__(
        self,
        client: BulkClient,
        seam: BulkSeam,
        http: httpx.AsyncClient,
        *,
        out_dir: Path,
        reporter: Reporter,
        concurrency: int,
        overwrite: bool = False,
    ) -> None:
        self.client = client
        self.seam = seam
        self.ledger = ledger = seam.ledger
        self.http = http
        self.out_dir = out_dir
        self.part_tag = ledger.journal.part_tag
        self.reporter = reporter
        self._limit = anyio.CapacityLimiter(concurrency)
        self.overwrite = overwrite
        # The outputs there before the run that --overwrite may replace, each once: never
        # one this run wrote for another input of the same name.
        self._replaceable: set[Path] = set()
        self._jobs: set[Job] = set()  # this run's jobs in the client, for the ETA
        self._total = 0
        self._operation = Operation.UPSCALE
        # The client's first 401 or 402: it fails every input still to submit, once said.
        self._stopped_by: RecraftError | None = None

    async def run(self, works: Sequence[Work]) -> list[Outcome]:
        """Process every work; the outcomes come back in input order."""
        self.reporter.start(len(works))
        self._total = len(works)
        self._operation = works[0].operation if works else Operation.UPSCALE
        # Absolute, as the paths downloads answer: an output is known by its path.
        self.out_dir = Path(await anyio.Path(self.out_dir).resolve())
        failure: Exception | None = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._tell_waits)
            try:
                outcomes = await self._run(works)
            except Exception as exc:  # noqa: BLE001 - raised below, not in an exception group
                failure = exc
            tg.cancel_scope.cancel()
        if failure is not None:
            raise failure
        return outcomes

    async def _tell_waits(self) -> None:
        """Every STATUS_EVERY seconds, tell the reporter what the run waits on."""
        while True:
            await anyio.sleep(STATUS_EVERY)
            # Items "submitting" are the client's: they wait for the submit rate (said
            # first, when it holds any back) or on the service's processing.
            in_flight = self.reporter.counts["submitting"]
            next_submit_in = self.seam.next_submit_in()
            self.reporter.waiting(next_submit_in, in_flight, self._eta(next_submit_in))

    def _eta(self, next_submit_in: float | None) -> float | None:
        """Seconds to the end of the run (see ``eta_seconds``), from what the client learnt."""
        learnt = self.client.processing_times().get(self._operation)
        prior = self.client.poll.prior
        processing = learnt or prior
        now = time.time()
        sent = [
            event.time for job in self._jobs for event in job.events if event.kind == "submitted"
        ]
        counts = self.reporter.counts
        ended = sum(counts[state] for state in FINAL) + counts["downloading"]
        return eta_seconds(
            unsubmitted=self._total - ended - len(sent),
            in_flight_ages=[now - at for at in sent],
            submit_rate=self.client.submit_rate,
            concurrency=self.client.max_in_flight,
            processing=None if processing is None else processing.median,
            next_submit_in=next_submit_in,
        )

    async def _run(self, works: Sequence[Work]) -> list[Outcome]:
        removed = await anyio.to_thread.run_sync(remove_leftover_parts, self.out_dir, self.part_tag)
        if removed:
            self.reporter.line(f"removed {removed} partial download(s) left by an earlier run")
        outcomes: list[Outcome | None] = [None] * len(works)
        # First every input is checked and journalled as PENDING, so a run killed at any
        # point can be finished by `resume` even for inputs it never reached.
        # Each input's identity, computed once here and carried to its job.
        identities: list[InputIdentity | None] = [None] * len(works)

        async def prepare(i: int) -> None:
            async with self._limit:
                result = await self._prepare(works[i])
            if isinstance(result, Outcome):
                outcomes[i] = result
            else:
                identities[i] = result

        async def process(i: int, identity: InputIdentity) -> None:
            async with self._limit:
                outcomes[i] = await self._process(works[i], identity)

        async with anyio.create_task_group() as tg:
            for i in range(len(works)):
                tg.start_soon(prepare, i)
        # The same image under two names is one unit of work (one fingerprint): processed
        # once, reported for both, so that it is neither paid twice nor seen as a clash.
        first: dict[str, int] = {}
        copies: list[tuple[int, int]] = []
        async with anyio.create_task_group() as tg:
            for i, identity in enumerate(identities):
                if identity is None:
                    continue
                if identity.key in first:
                    copies.append((i, first[identity.key]))
                    continue
                first[identity.key] = i
                tg.start_soon(process, i, identity)
        for i, j in copies:
            original = outcomes[j]
            assert original is not None  # noqa: S101 - every processed work has an outcome
            outcomes[i] = self._end(works[i], attrs.evolve(original, label=works[i].item.label))
        return [o for o in outcomes if o is not None]

    def _end(self, work: Work, outcome: Outcome, *, announce: bool = True) -> Outcome:
        detail = _shown(outcome.output) if outcome.output is not None else outcome.error or ""
        self.reporter.update(work.item.label, outcome.state, detail, announce=announce)
        return outcome

    def _stopped(self, work: Work, error: RecraftError) -> Outcome:
        """An input failed by the account (401, 402): the batch says so once, not per image."""
        if self._stopped_by is None:
            self._stopped_by = error
            self.reporter.line(f"stopped: {error}; no more inputs are submitted")
        failed = _failed(work, error)
        return self._end(work, failed, announce=False)

    async def _prepare(self, work: Work) -> InputIdentity | Outcome:
        item = work.item
        self.reporter.update(item.label, "preparing")
        if item.problem is not None:
            return self._end(work, _failed(work, item.problem))
        try:
            request = await anyio.to_thread.run_sync(self._request, work)
            identity = await identify_request(request)
            existing = await self._existing_output(work)
            if existing is not None and self.overwrite:
                self._replaceable.add(existing)
            elif existing is not None and await self._unpaid(identity):
                return self._end(work, Outcome(item.label, "skipped", existing, SKIPPED_REASON))
            await self.ledger.register(request, identity)
        except JournalUnreadableError as exc:  # its row is damaged: it may have been paid
            return self._end(work, unreadable_outcome(exc, item.label))
        except InvalidInputError as exc:
            return self._end(work, _failed(work, exc))
        except OSError as exc:  # the file changed between the check and the hash
            return self._end(work, _failed(work, exc, _os_reason("cannot read it", exc)))
        return identity

    async def _existing_output(self, work: Work) -> Path | None:
        """The file already in the output folder under ``work``'s output name, if any."""
        # A name made from the task id (an input with no usable name) is not known yet.
        names = {_output_name(work, task_id) for task_id in ("a", "b")}
        if len(names) != 1:
            return None
        path = self.out_dir / names.pop()
        return path if await anyio.Path(path).is_file() else None

    async def _unpaid(self, identity: InputIdentity) -> bool:
        """Whether the journal proves that nothing was paid for the input of ``identity``."""
        entry = await self.ledger.lookup(identity.key)
        return entry is None or entry.state in _UNPAID

    async def _process(self, work: Work, identity: InputIdentity) -> Outcome:
        label = work.item.label
        task_id: str | None = None
        key = identity.key
        try:
            entry = await self.ledger.lookup(key)
            known = await _known(label, entry)
            if known is not None:
                return self._end(work, known)
            urls, task_id, cost = await self._result_urls(work, entry, identity)
            self.reporter.update(label, "downloading")
            output = await self._download(work, urls, task_id)
            target = self.out_dir / _output_name(work, task_id)
            if output != target and target in self._replaceable:
                self._replaceable.discard(target)
                await anyio.Path(output).replace(target)  # atomic: the old file until now
                output = target
            await self.ledger.downloaded(key, output)
            done = Outcome(label, "done", output, None, task_id, credits=cost)
            return self._end(work, done)
        except (SubmissionUncertainError, JournalUnreadableError) as exc:
            # Maybe paid: an uncertain submit, or a journal row that can no longer say.
            return self._end(work, _uncertain(label, str(exc)))
        except (AuthenticationError, InsufficientCreditsError) as exc:
            return self._stopped(work, exc)
        except OSError as exc:
            # Local trouble (a full disk, a folder we may not write: DownloadWriteError;
            # the input gone) is this input's alone. Once the task is paid for, its entry
            # keeps the task id and result URLs: `resume` downloads it again, unpaid.
            if task_id is None:
                why = _os_reason("cannot read it", exc)
            else:
                why = _os_reason("cannot save the result", exc) + "; `resume` downloads it again"
            return self._end(work, _failed(work, exc, why, task_id))
        except RecraftError as exc:
            # The client journals its own jobs; a failed download or a poll that timed
            # out leaves the entry as it was, for `resume` to finish.
            return self._end(work, _failed(work, exc, task_id=task_id))

    async def _result_urls(
        self, work: Work, entry: JournalEntry | None, identity: InputIdentity
    ) -> tuple[tuple[str, ...], str, float | None]:
        """The result URLs, task id and stated cost (None: not stated, or an earlier run's)."""
        done = (_S.SUCCEEDED, _S.DOWNLOADED)
        if entry is not None and entry.state in done and entry.result_urls and entry.task_id:
            return entry.result_urls, entry.task_id, None
        # The ledger decides "resume or submit" (its record's rule); a journalled task is
        # polled by its id alone, for the input file may have gone since.
        record = None if entry is None else self.ledger.reopen(entry)
        task_id = None if record is None else record.resumable_task(work.operation)
        if record is not None and task_id is not None:
            result = await self._resume(work, record, task_id)
        else:
            self.reporter.update(work.item.label, "submitting")
            # Checked again: the file may have changed since it was registered.
            request = await anyio.to_thread.run_sync(self._request, work)
            job = self.seam.submit(request, identity)
            self._jobs.add(job)
            try:
                result = await job
            finally:
                self._jobs.discard(job)
        return result.urls, result.task_id, result.credits

    async def _resume(self, work: Work, record: Record, task_id: str) -> Result:
        """Poll a journalled task by its id (the input file may have gone since)."""
        try:
            result = await self.client.resume(task_id, work.operation)
        except RecraftError as exc:
            await record.failed(exc)
            raise
        await record.succeeded(result)
        return result

    def _request(self, work: Work) -> SubmitRequest:
        """The checked request of ``work``, as the client's own call makes it."""
        source: object = work.item.path if work.item.path is not None else work.item.source
        options, dialect = work.options, self.client.dialect
        if work.operation is Operation.UPSCALE:
            scale, format_ = options.get("scale"), options.get("format")
            return check_upscale(source, scale, format_, None, dialect=dialect)
        return check_remove_background(source, options.get("output_format"), None, dialect=dialect)

    async def _download(self, work: Work, urls: tuple[str, ...], task_id: str) -> Path:
        name = _output_name(work, task_id)
        # A result host that refuses gets one fresh link from KIE, through the client.
        return await save_result(
            self.http,
            urls[0],
            self.out_dir,
            name,
            task_id=task_id,
            link_for=self.client.download_url,
            part_tag=self.part_tag,
        )


def _output_name(work: Work, task_id: str) -> str:
    """The file name ``work``'s result is saved under (another if that one is taken)."""
    hint = work.item.path.name if work.item.path is not None else work.item.source
    extension = str(work.options.get("format") or "png").lower()
    return safe_output_name(hint, task_id, "jpg" if extension == "jpeg" else extension)


def remove_leftover_parts(out_dir: Path, part_tag: str) -> int:
    """Delete the partial downloads a killed run of this journal left; answer how many.

    Safe while the journal is held: its lock keeps any other run of it out, and only the
    temporary files of its own runs (named with its ``part_tag``) are touched, never those
    of another batch writing to the same folder.
    """
    removed = 0
    with contextlib.suppress(FileNotFoundError):  # a first run: no folder yet
        for path in out_dir.glob(part_glob(part_tag)):
            if path.is_file():
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed += 1
    return removed


async def _known(label: str, entry: JournalEntry | None) -> Outcome | None:
    """The outcome an earlier run settled for good, if any."""
    if entry is None:
        return None
    # A DOWNLOADED entry whose file was deleted is fetched again from its URLs.
    if await _still_there(entry):
        return Outcome(label, "done", entry.output_path, None, entry.task_id)
    if entry.state is _S.UNCERTAIN:
        return _uncertain(label, entry.error)
    return None


async def _still_there(entry: JournalEntry) -> bool:
    if entry.state is not _S.DOWNLOADED or entry.output_path is None:
        return False
    return await anyio.Path(entry.output_path).is_file()


def _shown(path: Path) -> str:
    """A path as short as it can be said: relative to the working folder when inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def unreadable_outcome(error: JournalUnreadableError, label: str | None = None) -> Outcome:
    """An input whose journal row is damaged: uncertain, for the row may hold a paid task."""
    if label is None:
        label = error.source or f"journal row {(error.fingerprint or '?')[:12]}"
    names = (label, error.source or "")
    return Outcome(label, "uncertain", error=_reason(str(error), names, None))


def _uncertain(label: str, error: str | None) -> Outcome:
    reason = _reason(error, (label,), None) if error else "the submit may have created a task"
    return Outcome(label, "uncertain", error=reason)


def _failed(
    work: Work, error: Exception | str, text: str | None = None, task_id: str | None = None
) -> Outcome:
    """A failed outcome whose reason names neither the input nor the task id."""
    item = work.item
    names = (item.label, str(item.path) if item.path is not None else item.source)
    if isinstance(error, str):
        return Outcome(item.label, "failed", error=_reason(error, names, None))
    task_id = task_id or getattr(error, "task_id", None)
    reason = _reason(str(error) if text is None else text, names, task_id)
    return Outcome(item.label, "failed", error=reason, task_id=task_id, kind=type(error).__name__)


def _os_reason(what: str, exc: OSError) -> str:
    # The errno's words only: the file name is a temporary one or the input's own label.
    return f"{what}: {exc.strerror or type(exc).__name__}"


def _reason(text: str, names: Sequence[str], task_id: str | None) -> str:
    """``text`` without the input's name it may start with, nor the task id it may hold."""
    for name in names:
        if name and text.startswith(f"{name}: "):
            text = text[len(name) + 2 :]
            break
    if task_id:
        token = re.escape(task_id)
        text = re.sub(rf"\btask '?{token}'?(?![\w-])\s*", "task ", text)
        text = re.sub(rf"(?<![\w-]){token}(?![\w-])", "…", text)
    return text.strip() or "no reason given"
