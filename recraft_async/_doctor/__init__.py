"""``recraft-async doctor``: settle, with one real key, what no offline test can know.

It uploads two small images it draws itself, submits one crisp upscale and one background
removal (the market dialect), reads each task's status twice a second until it ends,
fetches each result directly and through KIE's download-link endpoint, and reads the
balance before and after each task. Then it prints one row per assumption the library
makes about the service: confirmed, different (with what was seen) or not seen. Every
exchange is recorded through its own raw httpx requests, and ``--trace PATH`` writes them,
redacted, for a bug report; ``recraft_async.testing`` can replay such a trace.

Exit status: 0 when everything seen is confirmed, 1 when anything differs, 2 for usage
or account problems (no key, a refused key, too few credits, no consent): then nothing
was spent.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TextIO

import anyio
import attrs

from recraft_async._core._errors import RecraftError
from recraft_async._core._escape import printable
from recraft_async._core._extras import EMULATOR_PACKAGES, needs_extra
from recraft_async._core._limits import PUBLISHED_PRICES
from recraft_async._core._models import TRACE_FORMAT, Operation
from recraft_async._core._policy import PollPolicy
from recraft_async._version import __version__

from ._checks import DIFFERENT, Finding, judge
from ._png import SIDE, circle_png
from ._probe import Probe, redact
from ._session import READ_INTERVAL, Refused, Session, Where

__all__ = ["DoctorOptions", "add_arguments", "doctor", "run_command"]

EXIT_CONFIRMED, EXIT_DIFFERENT, EXIT_USAGE = 0, 1, 2
# A subject on a plain background, as background removal expects, different per operation.
_IMAGES = {
    Operation.UPSCALE: circle_png(colour=(200, 30, 40)),
    Operation.REMOVE_BACKGROUND: circle_png(background=(228, 228, 228), colour=(30, 60, 190)),
}
# Emulated tasks take about a second: the prior's 20 s median, scaled.
_EMULATOR_TIME_SCALE = 0.05


@attrs.frozen
class DoctorOptions:
    """What one doctor's run needs."""

    api_key: str = attrs.field(repr=False)
    base_url: str
    upload_base_url: str
    yes: bool = False
    trace: Path | None = None
    timeout: float = PollPolicy().timeout
    emulated: bool = False


Ask = Callable[[str], Awaitable[bool]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The doctor's own options (the key's options are the command line's)."""
    parser.add_argument("--base-url", default=None, help="API base URL (default $KIE_BASE_URL)")
    parser.add_argument("--upload-base-url", default=None, help="file upload base URL")
    parser.add_argument(
        "--yes", "-y", action="store_true", help="spend the credits without asking first"
    )
    parser.add_argument(
        "--trace",
        type=Path,
        default=None,
        metavar="PATH",
        help="write every exchange, redacted (no key), as JSON to PATH for a bug report",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=PollPolicy().timeout,
        metavar="SECONDS",
        help="how long to follow each task (default: the client's poll timeout, 900)",
    )
    parser.add_argument(
        "--emulator",
        action="store_true",
        help="run against the built-in emulator on loopback; no key, nothing spent",
    )


async def run_command(args: argparse.Namespace, api_key: str | None, *, out: TextIO) -> int:
    """The command line's ``doctor``: the options from ``args``, the key read by the caller."""
    if not args.timeout > 0:
        return _usage(out, "--timeout must be > 0")
    if args.emulator:
        try:
            from recraft_async.testing import KieEmulator, serve  # noqa: PLC0415 - the emulator extra
        except ImportError:
            return _usage(out, needs_extra("--emulator", "emulator", EMULATOR_PACKAGES))
        emulator = KieEmulator(time_scale=_EMULATOR_TIME_SCALE)
        async with serve(emulator) as url:
            key = emulator.api_key
            options = DoctorOptions(key, url, url, yes=True, trace=args.trace,
                                    timeout=args.timeout, emulated=True)  # fmt: skip
            return await doctor(options, out=out, ask=_ask)
    if not api_key:
        return _usage(out, "no API key: set KIE_API_KEY, pass --api-key-file, or use --emulator")
    from recraft_async._client import AsyncRecraft  # noqa: PLC0415 - its address rules, nothing more

    try:
        # Never opened: it resolves and checks the addresses as every client does.
        client = AsyncRecraft(
            api_key=api_key, base_url=args.base_url, upload_base_url=args.upload_base_url
        )
    except RecraftError as exc:
        return _usage(out, str(exc))
    options = DoctorOptions(
        api_key,
        client.base_url,
        client.upload_base_url,
        yes=args.yes,
        trace=args.trace,
        timeout=args.timeout,
    )
    return await doctor(options, out=out, ask=_ask)


async def doctor(options: DoctorOptions, *, out: TextIO, ask: Ask) -> int:
    """Run the doctor; answer its exit status (see the module's doc)."""
    probe = Probe(options.api_key)

    def say(line: str) -> None:
        out.write(probe.scrub(printable(line)) + "\n")
        out.flush()

    session = Session(
        probe, Where(options.base_url, options.upload_base_url), say, timeout=options.timeout
    )
    findings: list[Finding] = []
    try:
        _say_plan(say, options)
        status = await _examine(session, options, say, ask)
        if status is None:
            findings = judge(session.runs, session.balance_reads)
            _say_table(say, findings)
            status = EXIT_DIFFERENT if any(f.verdict == DIFFERENT for f in findings) else 0
    finally:
        await probe.aclose()
        if options.trace is not None:
            await _write_trace(options, probe, session, findings)
            say(f"trace written to {options.trace} (no key, no signed query strings)")
    return status


async def _examine(
    session: Session, options: DoctorOptions, say: Callable[[str], None], ask: Ask
) -> int | None:
    """The steps, or an exit status when they stop early (nothing more is spent then)."""
    total = sum(PUBLISHED_PRICES.values())
    try:
        balance = await session.balance()
        say(f"balance: {'unreadable' if balance is None else f'{balance:g}'} credits")
        if balance is not None and balance < total:
            say(f"error: {balance:g} credits, fewer than the {total:g} the doctor spends")
            return EXIT_USAGE
        if not options.yes and not await ask(f"Spend about {total:g} credits? [y/N] "):
            say("nothing spent")
            return EXIT_USAGE
        for operation in Operation:
            balance = (await session.run(operation, _IMAGES[operation], balance)).balance_after
    except Refused as exc:
        spent = [run.operation.value for run in session.runs if run.task_id is not None]
        say(
            f"error: {exc}; "
            + (f"tasks submitted: {', '.join(spent)}" if spent else "nothing spent")
        )
        return EXIT_USAGE
    return None


def _say_plan(say: Callable[[str], None], options: DoctorOptions) -> None:
    prices = ", ".join(f"{op.value} {PUBLISHED_PRICES[op]:g}" for op in Operation)
    where = (
        "the built-in emulator (nothing real is spent)" if options.emulated else options.base_url
    )
    say(f"recraft-async doctor {__version__}: checks {where} against the library's assumptions.")
    say(
        f"It reads the balance, uploads two {SIDE}x{SIDE} PNG images it draws itself to"
        f" {options.upload_base_url}, submits one crisp upscale and one background removal"
        f" (market dialect), reads each task's status every {READ_INTERVAL:g} s until it ends"
        f" (at most {options.timeout:g} s), fetches each result directly and through the"
        " download-link endpoint, and reads the balance after each task."
    )
    say(f"Cost: {sum(PUBLISHED_PRICES.values()):g} credits at KIE's published prices ({prices}).")


def _say_table(say: Callable[[str], None], findings: list[Finding]) -> None:
    width = max(len(f.assumption) for f in findings)
    say("")
    say(f"{'assumption':<{width}}  {'verdict':<9}  seen")
    for finding in findings:
        say(f"{finding.assumption:<{width}}  {finding.verdict:<9}  {finding.seen}")
    counts = {
        v: sum(f.verdict == v for f in findings) for v in dict.fromkeys(f.verdict for f in findings)
    }
    say(", ".join(f"{n} {verdict}" for verdict, n in counts.items()))


async def _write_trace(
    options: DoctorOptions, probe: Probe, session: Session, findings: list[Finding]
) -> None:
    assert options.trace is not None  # noqa: S101 - the caller checked
    tasks = [
        {
            "operation": run.operation.value,
            "taskId": run.task_id,
            "endedAfter": run.ended_after,
            "timedOut": run.timed_out,
        }
        for run in session.runs
    ]
    extra: dict[str, Any] = {
        "recraftAsyncDoctor": TRACE_FORMAT,
        "version": __version__,
        "baseUrl": redact(options.base_url),
        "uploadBaseUrl": redact(options.upload_base_url),
        "tasks": tasks,
        "findings": [attrs.asdict(f) for f in findings],
    }
    await anyio.Path(options.trace).write_text(probe.trace(options.base_url, extra), "utf-8")


def _usage(out: TextIO, message: str) -> int:
    out.write(f"recraft-async: error: {printable(message)}\n")
    return EXIT_USAGE


async def _ask(question: str) -> bool:
    """Ask on the terminal; without one there is nobody to ask, so the answer is no."""
    if not sys.stdin.isatty():
        sys.stdout.write("no terminal to ask on: pass --yes to spend the credits\n")
        return False
    try:
        answer = await anyio.to_thread.run_sync(input, question)
    except EOFError:
        return False
    return answer.strip().lower() in {"y", "yes"}
