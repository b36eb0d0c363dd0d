"""The recraft-async command line: bulk upscale / background removal with a journal.

Exit status: 0 when every input succeeded (or was skipped: its output is there already;
--overwrite replaces it), 1 when some failed or are uncertain, 2 for usage errors (a
missing input or @list, a bad option: nothing is made), 130 when interrupted (the
journal is intact; ``resume`` finishes).
-v shows the library's log (-vv its debug lines), -q only errors and the summary.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import logging
import os
import re
import shlex
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

import anyio
import httpx

from . import _doctor
from ._bulk._batch import SKIPPED_REASON, Batch, Outcome, Work, unreadable_outcome, work_from_entry
from ._bulk._inputs import InputItem, expand_inputs
from ._bulk._journal import Journal, JournalState
from ._bulk._progress import QuietReporter, Reporter, make_reporter
from ._core._check import DIALECT_NAMES, DialectName
from ._core._escape import printable
from ._core._extras import EMULATOR_PACKAGES, needs_extra
from ._core._keys import checked_key
from ._core._logging import LOGGER_NAME, env_level
from ._core._models import Operation
from ._core._policy import PollPolicy
from ._core._redact import redact
from ._version import __version__
from .errors import InvalidInputError, JournalUnreadableError, RecraftError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator, Sequence

    from ._bulk_client import BulkRecraft
    from ._client import AsyncRecraft

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
DEFAULT_OUT = "recraft-out"
JOURNAL_NAME = "journal.sqlite"
# The emulator finishes tasks in fractions of a second; the live service's 2 s first
# read would only make offline runs slow.
EMULATOR_POLL = PollPolicy(initial=0.1, factor=1.5, max_interval=1.0, timeout=120.0)


_EXAMPLES = """examples:
  recraft-async samples && recraft-async upscale samples --emulator   # offline, no key
  recraft-async upscale photos/ --out big/
  recraft-async upscale photos/ --dialect recraft --scale 4 --format jpg
  recraft-async remove-bg @urls.txt shop/*.png --json
  recraft-async resume --out big/          # after Ctrl-C, a crash or kill -9
"""


class UsageError(Exception):
    """A command line that cannot run; reported with exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, with did-you-mean for a misspelt command; ``commands`` holds the others."""

    commands: dict[str, argparse.ArgumentParser]

    def error(self, message: str) -> NoReturn:
        """Exit 2 with this parser's usage, and a suggestion for a misspelt command."""
        wrong = re.match(r"argument COMMAND: invalid choice: '([^']*)'", message)
        commands = getattr(self, "commands", {})
        if wrong and commands:
            close = difflib.get_close_matches(wrong[1], list(commands), n=1)
            if close:
                message += f"; did you mean {close[0]}?"
        super().error(message)


class _LogLines(logging.Handler):
    """The library's log records as the command's own lines: above the bar, one line each."""

    def __init__(self) -> None:
        super().__init__()
        self.reporter: Reporter | None = None

    def emit(self, record: logging.LogRecord) -> None:
        """One record on one line: through the reporter while a batch runs, else stderr."""
        try:
            text = f"{record.levelname.lower()}: {record.getMessage()}"
            if record.exc_info and record.exc_info[1] is not None:
                error = record.exc_info[1]
                text += f" ({type(error).__name__}: {error})"
            if self.reporter is not None:
                self.reporter.line(redact(text))
            else:
                _say(f"recraft-async: {printable(text)}", file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging's own convention: report, never raise
            self.handleError(record)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; answer the exit status."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    if arguments[:1] == ["emulator"]:
        # Handed over whole: argparse cannot pass "--port ..." through a sub-command.
        try:
            from .testing.__main__ import main as serve_emulator  # noqa: PLC0415 - an extra
        except ImportError:
            needed = needs_extra("the emulator", "emulator", EMULATOR_PACKAGES)
            sys.stderr.write(f"recraft-async: error: {needed}\n")
            return EXIT_USAGE
        return int(serve_emulator(arguments[1:], prog="recraft-async emulator"))
    parser = build_parser()
    args = _parse(parser, arguments)
    with _library_log(args) as log_lines:
        args.log_lines = log_lines
        try:
            return anyio.run(_run, args, backend="asyncio")
        except UsageError as exc:
            parser.exit(EXIT_USAGE, redact(f"recraft-async: error: {exc}\n"))
        except KeyboardInterrupt:  # where signal handlers are unavailable (Windows)
            _print_resume_hint(args)
            return EXIT_INTERRUPTED
    return EXIT_OK  # not reached: parser.exit raises SystemExit


def _parse(parser: _Parser, arguments: list[str]) -> argparse.Namespace:
    """The parsed command line; a usage error exits 2 with the sub-command's own usage.

    argparse would answer an unknown option with the top-level usage, which names no
    option at all: the sub-command's parser says it instead, with what was meant.
    """
    args, extras = parser.parse_known_args(arguments)
    if extras:
        parser.commands[args.command].error(_unknown(args.command, extras, parser.commands))
    return args


def _unknown(command: str, extras: list[str], commands: dict[str, argparse.ArgumentParser]) -> str:
    """Why ``extras`` are not arguments of ``command``: another command's, or misspelt."""
    own = _long_options(commands[command])
    for extra in extras:
        flag = extra.split("=", 1)[0]
        if not flag.startswith("-"):
            continue
        elsewhere = [name for name, sub in commands.items() if flag in _long_options(sub)]
        if elsewhere:
            return f"{flag} does not apply to {command} (only to {' and '.join(elsewhere)})"
        close = difflib.get_close_matches(flag, own, n=1, cutoff=0.7)
        if close:
            return f"unrecognized argument {flag}; did you mean {close[0]}?"
    return f"unrecognized arguments: {' '.join(extras)}"


def _long_options(parser: argparse.ArgumentParser) -> list[str]:
    return [
        option
        for action in parser._actions  # noqa: SLF001 - argparse offers no public list
        for option in action.option_strings
        if option.startswith("--")
    ]


@contextlib.contextmanager
def _library_log(args: argparse.Namespace) -> Iterator[_LogLines]:
    """The library's log, at the level -v/-q (else RECRAFT_LOG) asks, as lines of ours.

    For the run, our handler is the logger's only one: RECRAFT_LOG's stderr handler would
    print each record a second time, and through the progress bar.
    """
    logger = logging.getLogger(LOGGER_NAME)
    verbose, quiet = getattr(args, "verbose", 0), getattr(args, "quiet", False)
    if quiet:
        level = logging.ERROR
    elif verbose:
        level = logging.DEBUG if verbose > 1 else logging.INFO
    else:
        level = env_level() or logging.WARNING
    saved = logger.handlers[:], logger.level, logger.propagate
    handler = _LogLines()
    logger.handlers = [handler]
    logger.setLevel(level)
    logger.propagate = False
    try:
        yield handler
    finally:
        logger.handlers, _, logger.propagate = saved
        logger.setLevel(saved[1])


def build_parser() -> _Parser:
    """The argument parser, with one sub-command per action."""
    common = _Parser(add_help=False)
    talk = common.add_mutually_exclusive_group()
    talk.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="show the library's log: jobs queued, submitted, finished (-vv: retries too)",
    )
    talk.add_argument(
        "-q", "--quiet", action="store_true", help="no progress: only errors and the summary"
    )
    common.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"output folder (default ./{DEFAULT_OUT}; for resume, the batch's own folder)",
    )
    common.add_argument(
        "--concurrency", type=_positive_int, default=8, help="images in flight at once (default 8)"
    )
    common.add_argument(
        "--journal", type=Path, default=None, help=f"journal file (default OUT/{JOURNAL_NAME})"
    )
    _add_key_options(common)
    common.add_argument("--base-url", default=None, help="API base URL (default $KIE_BASE_URL)")
    common.add_argument("--upload-base-url", default=None, help="file upload base URL")
    common.add_argument(
        "--dialect",
        choices=DIALECT_NAMES,
        default=None,
        help="market: KIE's documented jobs API (default, or $KIE_DIALECT); recraft: the"
        " seed's per-product endpoints, which carry --scale and --format",
    )
    common.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    common.add_argument(
        "--poll-initial",
        type=float,
        default=None,
        metavar="SECONDS",
        help="wait before the first status read (default 2; lower it for a local emulator)",
    )
    common.add_argument(
        "--emulator",
        action="store_true",
        help="run against the built-in emulator on loopback; no key needed",
    )

    parser = _Parser(
        prog="recraft-async",
        description=__doc__,
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"recraft-async {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    inputs_help = "files, folders (searched recursively), http(s) URLs, or @list.txt"
    outputs = _Parser(add_help=False)
    outputs.add_argument(
        "--overwrite",
        action="store_true",
        help="process inputs whose output file exists already, and replace it (default: skip"
        " them, unpaid)",
    )
    up = commands.add_parser("upscale", parents=[common, outputs], help="crisp-upscale images")
    up.add_argument("inputs", nargs="+", metavar="INPUT", help=inputs_help)
    up.add_argument(
        "--scale", type=int, choices=(2, 4), default=None, help="recraft dialect only (default 2)"
    )
    up.add_argument(
        "--format", choices=("png", "jpg"), default=None, help="recraft dialect only (default png)"
    )
    rb = commands.add_parser(
        "remove-bg", parents=[common, outputs], help="remove image backgrounds"
    )
    rb.add_argument("inputs", nargs="+", metavar="INPUT", help=inputs_help)
    res = commands.add_parser(
        "resume", parents=[common, outputs], help="finish what a journal holds"
    )
    res.add_argument("--retry-failed", action="store_true", help="submit failed inputs again")
    commands.add_parser("credits", parents=[common], help="print the account's credit balance")
    doctor = commands.add_parser(
        "doctor",
        help="check the real service against the library's assumptions (about 1.5 credits)",
        description=_doctor.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_key_options(doctor)
    _doctor.add_arguments(doctor)
    samples = commands.add_parser("samples", help="write sample images (drawn by code)")
    samples.add_argument("folder", type=Path, nargs="?", default=Path("samples"))
    emu = commands.add_parser(
        "emulator", help="serve the KIE emulator for other programs", add_help=False
    )
    emu.add_argument(
        "emulator_args",
        nargs=argparse.REMAINDER,
        help="the emulator's options (--port, --time-scale...): recraft-async emulator --help",
    )
    parser.commands = dict(commands.choices)
    return parser


def _add_key_options(parser: argparse.ArgumentParser) -> None:
    keys = parser.add_mutually_exclusive_group()
    keys.add_argument(
        "--api-key-file",
        type=Path,
        default=None,
        metavar="PATH",
        help="read the KIE API key from this file; with neither key option, $KIE_API_KEY",
    )
    keys.add_argument(
        "--api-key",
        default=None,
        metavar="KEY",
        help="the KIE API key itself; other users see it in the process list, so prefer"
        " $KIE_API_KEY or --api-key-file",
    )


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


async def _run(args: argparse.Namespace) -> int:
    if args.command == "samples":
        return await _write_samples(args.folder)
    interrupted = False
    async with anyio.create_task_group() as tg:

        async def watch_signals() -> None:
            nonlocal interrupted
            with (
                contextlib.suppress(NotImplementedError),
                anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals,
            ):
                async for _ in signals:
                    interrupted = True
                    tg.cancel_scope.cancel()
                    return

        tg.start_soon(watch_signals)
        # Raised after the task group, so that it is not wrapped in an exception group.
        usage: UsageError | None = None
        try:
            status = await (_doctor_command(args) if args.command == "doctor" else _command(args))
        except UsageError as exc:
            usage, status = exc, EXIT_USAGE
        except JournalUnreadableError as exc:  # refused whole, never taken as a new one
            usage, status = UsageError(printable(str(exc))), EXIT_USAGE
        except RecraftError as exc:  # the run as a whole failed: wrong key, bad journal...
            _say(f"recraft-async: error: {printable(exc)}", file=sys.stderr)
            status = EXIT_FAILED
        tg.cancel_scope.cancel()
    if usage is not None:
        raise usage
    if interrupted:
        _print_resume_hint(args)
        return EXIT_INTERRUPTED
    return status


def _refuse_market_options(args: argparse.Namespace, dialect: DialectName) -> None:
    """--scale and --format exist only in the seed's dialect (the client's, as it chose it)."""
    given = [f"--{name}" for name in ("scale", "format") if getattr(args, name, None) is not None]
    if dialect == "market" and given:
        raise UsageError(
            f"{' and '.join(given)}: KIE's jobs API (the market dialect, the default) takes an"
            " image only; use --dialect recraft for the seed's endpoints, which carry them"
        )


async def _command(args: argparse.Namespace) -> int:
    options = await _client_options(args)
    if args.command == "credits":
        async with _client(args, None, options) as client:
            balance = await client.credits()
        _say(json.dumps({"credits": balance}) if args.json else balance)
        return EXIT_OK
    if args.out is not None:
        # Before the journal (by default inside it) is made and before anything is sent.
        await _check_folder(Path(args.out))
    journal_path = _journal_path(args)
    if args.command == "resume" and not await anyio.Path(journal_path).is_file():
        raise UsageError(f"no journal at {journal_path} (pass --journal or --out)")
    # Expanded before the journal is made: a mistyped input makes nothing (exit 2).
    listed = None if args.command == "resume" else await _given_items(args, _planned_out(args))
    async with Journal(journal_path) as journal:
        args.out = await _output_folder(args, journal)
        if listed is not None and listed[0] != await anyio.Path(args.out).resolve():
            listed = await _given_items(args, args.out)  # the journal's own folder, left out
        works, unreadable = await _works(args, journal, listed[1] if listed else [])
        if args.quiet:
            reporter: Reporter = QuietReporter()
        else:
            reporter = Reporter() if args.json else make_reporter()
        args.log_lines.reporter = reporter
        # Downloads use their own connection pool, which has never seen the API key.
        async with (
            _client(args, journal, options) as client,
            httpx.AsyncClient(timeout=httpx.Timeout(60.0)) as http,
        ):
            with reporter:
                batch = Batch(
                    client,
                    client.bulk_seam(),
                    http,
                    out_dir=args.out,
                    reporter=reporter,
                    concurrency=args.concurrency,
                    overwrite=args.overwrite,
                )
                outcomes = unreadable + await batch.run(works)
    return _summarise(args, outcomes, journal_path)


async def _doctor_command(args: argparse.Namespace) -> int:
    key = None if args.emulator else await _api_key(args)
    return await _doctor.run_command(args, key, out=sys.stdout)


async def _output_folder(args: argparse.Namespace, journal: Journal) -> Path:
    """Where outputs go: the journal's one folder; --out names it for a new journal.

    A journal holds one output folder, so that ``resume --journal J`` alone finds every
    output of the batch. Another --out for it is refused before anything is sent: its
    outputs would be split between two folders, and resume would know one of them.
    """
    held = await journal.output_folder()
    out = Path(args.out) if args.out is not None else held or Path(DEFAULT_OUT)
    await _check_folder(out)
    held = await journal.hold_output_folder(out)
    if await anyio.Path(held).resolve() != await anyio.Path(out).resolve():
        raise UsageError(
            f"--out {out}: the journal {journal.path} holds the outputs of {held}; pass"
            f" --out {held} (or no --out), or another --journal for a new batch"
        )
    return out


async def _check_folder(out: Path) -> None:
    """A usage error for an output folder that cannot be one (a file of that name)."""
    if await anyio.Path(out).exists() and not await anyio.Path(out).is_dir():
        raise UsageError(f"--out {out}: a file, not a folder")


def _planned_out(args: argparse.Namespace) -> Path:
    """The output folder before the journal is read: --out, else the default."""
    return Path(args.out) if args.out is not None else Path(DEFAULT_OUT)


async def _given_items(args: argparse.Namespace, out: Path) -> tuple[anyio.Path, list[InputItem]]:
    """The INPUT arguments expanded (``out`` left out), with ``out`` resolved.

    A path that is not there or an @list that cannot be read is a usage error: the command
    line is wrong, and nothing is made for it. A list's bad line fails alone, later.
    """
    items = await anyio.to_thread.run_sync(lambda: expand_inputs(args.inputs, exclude=out))
    mistyped = [item.problem for item in items if item.mistyped]
    if mistyped:
        raise UsageError("; ".join(p for p in mistyped if p))
    if not items:
        raise UsageError("no image files found in the given inputs")
    return await anyio.Path(out).resolve(), items


async def _works(
    args: argparse.Namespace, journal: Journal, items: list[InputItem]
) -> tuple[list[Work], list[Outcome]]:
    """The works of this run, and (for ``resume``) the journal's unreadable rows as outcomes."""
    if args.command == "resume":
        wanted = [
            JournalState.PENDING,
            JournalState.SUBMITTED,
            JournalState.SUCCEEDED,
            JournalState.DOWNLOADED,
            JournalState.UNCERTAIN,
        ]
        if args.retry_failed:
            wanted.append(JournalState.FAILED)
        # A damaged row is reported as its input's outcome, never skipped: its state is
        # unknown, so it is neither submitted again nor counted as done.
        unreadable = [unreadable_outcome(e) for e in await journal.unreadable()]
        entries = await journal.entries(wanted, skip_unreadable=True)
        if not entries and not unreadable and not await journal.entries():
            raise UsageError(f"the journal {_journal_path(args)} is empty")
        failed = []
        if not args.retry_failed:
            failed = await journal.entries([JournalState.FAILED], skip_unreadable=True)
        if failed and not args.quiet:
            _say(
                f"recraft-async: {len(failed)} input(s) failed earlier and are left alone;"
                " `resume --retry-failed` submits them again",
                file=sys.stderr,
            )
        return [work_from_entry(e) for e in entries], unreadable
    params: dict[str, Any] = {}
    if args.command == "upscale":
        operation = Operation.UPSCALE
        params = {k: v for k in ("scale", "format") if (v := getattr(args, k)) is not None}
    else:
        operation = Operation.REMOVE_BACKGROUND
    return [Work(item, operation, params) for item in items], []


async def _client_options(args: argparse.Namespace) -> dict[str, Any]:
    """The client's options: every one checked (a usage error) before anything is made or sent."""
    from ._client import AsyncRecraft  # noqa: PLC0415 - keeps `--help` fast

    options: dict[str, Any] = {"max_in_flight": args.concurrency}
    if args.dialect is not None:
        options["dialect"] = args.dialect
    # The client's own choice (--dialect, else $KIE_DIALECT, else its default), read back.
    _refuse_market_options(args, _checked(AsyncRecraft, options, "KIE_DIALECT: ").dialect)
    if args.poll_initial is not None:
        if not args.poll_initial > 0:
            raise UsageError("--poll-initial must be > 0")
        default = PollPolicy()
        options["poll"] = PollPolicy(
            initial=args.poll_initial,
            factor=default.factor,
            max_interval=max(default.max_interval, args.poll_initial),
            timeout=default.timeout,
        )
    if args.emulator:
        try:
            import recraft_async.testing  # noqa: F401, PLC0415 - optional extra, checked here
        except ImportError as exc:
            raise UsageError(needs_extra("--emulator", "emulator", EMULATOR_PACKAGES)) from exc
        return options
    key = await _api_key(args)
    if not key:
        raise UsageError("no API key: set KIE_API_KEY, pass --api-key-file, or use --emulator")
    # The upload host (a local base URL keeps uploads local) is the client's to choose.
    options.update(api_key=key, base_url=args.base_url, upload_base_url=args.upload_base_url)
    _checked(AsyncRecraft, options)
    return options


def _checked(client: type[AsyncRecraft], options: dict[str, Any], prefix: str = "") -> AsyncRecraft:
    """A client of ``options``, for its checks and choices only: it makes nothing until opened."""
    try:
        return client(**{"api_key": "checking-only", **options})
    except RecraftError as exc:
        raise UsageError(f"{prefix}{exc}") from None


@contextlib.asynccontextmanager
async def _client(
    args: argparse.Namespace, journal: Journal | None, options: dict[str, Any]
) -> AsyncIterator[BulkRecraft]:
    """The client of ``options`` (see ``_client_options``), on the emulator if asked."""
    from ._bulk_client import BulkRecraft  # noqa: PLC0415 - keeps `--help` fast

    options = {**options, "journal": journal}
    if args.emulator:
        from .testing import KieEmulator, serve  # noqa: PLC0415 - optional extra

        emulator = KieEmulator()
        async with serve(emulator) as url:
            options.setdefault("poll", EMULATOR_POLL)
            options.update(api_key=emulator.api_key, base_url=url, upload_base_url=url)
            client = BulkRecraft(**options)
            async with client:
                yield client
        return
    client = BulkRecraft(**options)
    async with client:
        yield client


async def _api_key(args: argparse.Namespace) -> str | None:
    """The key: --api-key-file or --api-key (one at most), else $KIE_API_KEY."""
    if args.api_key is not None:
        _say(
            "recraft-async: warning: --api-key shows the key to other users in the process"
            " list; prefer $KIE_API_KEY or --api-key-file",
            file=sys.stderr,
        )
        return _usable(args.api_key, "--api-key")
    if args.api_key_file is None:
        key = os.environ.get("KIE_API_KEY")
        return _usable(key, "$KIE_API_KEY") if key else None
    where = f"--api-key-file {args.api_key_file}"
    # Never a word of the file's contents in a message: it may hold the key.
    try:
        key = (await anyio.Path(args.api_key_file).read_text(encoding="utf-8")).strip()
    except UnicodeDecodeError:
        raise UsageError(f"{where}: not UTF-8 text") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UsageError(f"{where}: cannot read it ({reason})") from None
    if not key:
        raise UsageError(f"{where}: the file is empty")
    if not key.isprintable() or any(c.isspace() for c in key):
        raise UsageError(f"{where}: the file must hold the key alone, on one line")
    return _usable(key, where)


def _usable(key: str, where: str) -> str:
    """``key`` stripped, if it can go into a header; else a usage error naming the problem."""
    try:
        return checked_key(key, f"the API key from {where}")
    except InvalidInputError as exc:
        raise UsageError(str(exc)) from None


def _journal_path(args: argparse.Namespace) -> Path:
    if args.journal is not None:
        return Path(args.journal)
    return Path(DEFAULT_OUT if args.out is None else args.out) / JOURNAL_NAME


def _summarise(args: argparse.Namespace, outcomes: list[Outcome], journal: Path) -> int:
    done = [o for o in outcomes if o.state == "done"]
    skipped = [o for o in outcomes if o.state == "skipped"]
    failed = [o for o in outcomes if o.state == "failed"]
    uncertain = [o for o in outcomes if o.state == "uncertain"]
    spent = _credits(outcomes)
    if args.json:
        _say(
            json.dumps(
                {
                    "done": len(done),
                    "skipped": len(skipped),
                    "failed": len(failed),
                    "uncertain": len(uncertain),
                    "outputs": [
                        {"input": o.label, "output": str(o.output), "task_id": o.task_id}
                        for o in done
                    ],
                    "skipped_inputs": [
                        {"input": o.label, "output": str(o.output), "reason": o.error}
                        for o in skipped
                    ],
                    "failures": [
                        {"input": o.label, "error": o.error, "task_id": o.task_id} for o in failed
                    ],
                    "failure_reasons": [
                        {"reason": reason, "type": kind, "count": len(labels), "inputs": labels}
                        for (kind, reason), labels in _by_reason(failed).items()
                    ],
                    "uncertain_inputs": [{"input": o.label, "error": o.error} for o in uncertain],
                    "credits": spent,
                    "journal": str(journal),
                },
                indent=2,
            )
        )
    else:
        cost = "" if spent is None else f", credits: {spent:g}"
        skips = f", skipped: {len(skipped)} ({SKIPPED_REASON})" if skipped else ""
        _say(
            f"done: {len(done)}{skips}, failed: {len(failed)}, uncertain: {len(uncertain)}{cost}"
            f" (outputs in {args.out}, journal {journal})"
        )
        for (_, reason), labels in _by_reason(failed).items():
            if len(labels) == 1:
                _say(printable(f"  failed     {labels[0]}: {reason}"))
            else:
                _say(printable(f"  failed     {len(labels)} inputs: {reason}"))
                _say(printable(f"               {_some(labels)}"))
        for o in uncertain:
            _say(printable(f"  uncertain  {o.label}: {o.error}"))
        if skipped:
            _say(
                "  skipped inputs were not sent; --overwrite processes them and replaces the files"
            )
        if uncertain:
            _say(
                "  uncertain inputs may have been billed: check your KIE task history before"
                " submitting them again"
            )
    return EXIT_OK if not failed and not uncertain else EXIT_FAILED


def _credits(outcomes: list[Outcome]) -> float | None:
    """The credits the service said this run's tasks cost, or None when it said nothing.

    Only what was stated in this run: a task finished by an earlier run is not counted.
    """
    stated = [o.credits for o in outcomes if o.credits is not None]
    return round(sum(stated), 9) if stated else None  # no float noise: 0.1 + 0.2


def _by_reason(outcomes: list[Outcome]) -> dict[tuple[str | None, str], list[str]]:
    """The inputs of ``outcomes`` grouped by error type and reason, in the order first met.

    The batch words each reason without the input's label or task id, so that one cause
    (a content policy, a full disk) is one group however many inputs it failed.
    """
    groups: dict[tuple[str | None, str], list[str]] = {}
    for outcome in outcomes:
        key = (outcome.kind, outcome.error or "no reason given")
        groups.setdefault(key, []).append(outcome.label)
    return groups


def _some(labels: list[str], shown: int = 10) -> str:
    more = len(labels) - shown
    return ", ".join(labels[:shown]) + (f" and {more} more" if more > 0 else "")


def _say(*parts: object, file: TextIO | None = None) -> None:
    """One line of the command's own output (stdout unless told otherwise), redacted."""
    stream = sys.stdout if file is None else file
    stream.write(redact(" ".join(str(p) for p in parts)) + "\n")
    stream.flush()


def _print_resume_hint(args: argparse.Namespace) -> None:
    hint = (
        f"\nrecraft-async: interrupted; the journal is intact. Finish with:\n"
        f"  {resume_command(args)}"
    )
    if getattr(args, "emulator", False):
        # The built-in emulator lives in this process: its tasks end with it.
        hint += (
            "\nThe built-in emulator stopped with this run and forgot the tasks it had"
            " started: that resume reports them failed (not found) after a few seconds;"
            " a second one with --retry-failed makes them again (the emulator is free)."
        )
    _say(hint, file=sys.stderr)


def resume_command(args: argparse.Namespace) -> str:
    """The ``resume`` command line that finishes this run, as it can be typed.

    Every option resume needs to reach the same journal, folder and service: the emulator,
    the dialect (when not the default), the base URLs and the key file. Never the key
    itself: it comes from the environment (or --api-key) again.
    """
    out = getattr(args, "out", None) or Path(DEFAULT_OUT)
    journal = _journal_path(args) if hasattr(args, "journal") else out / JOURNAL_NAME
    words = ["recraft-async", "resume", "--journal", str(journal), "--out", str(out)]
    if getattr(args, "emulator", False):
        words.append("--emulator")
    dialect = getattr(args, "dialect", None) or os.environ.get("KIE_DIALECT")
    if dialect and dialect != "market":
        words += ["--dialect", dialect]
    for option in ("base_url", "upload_base_url", "api_key_file"):
        value = getattr(args, option, None)
        if value:
            words += [f"--{option.replace('_', '-')}", str(value)]
    return shlex.join(words)


async def _write_samples(folder: Path) -> int:
    try:
        from .testing import sample_images  # noqa: PLC0415 - optional extra
    except ImportError as exc:
        raise UsageError(needs_extra("samples", "emulator", EMULATOR_PACKAGES)) from exc
    await anyio.Path(folder).mkdir(parents=True, exist_ok=True)
    for name, data in await anyio.to_thread.run_sync(sample_images):
        await anyio.Path(folder / name).write_bytes(data)
        _say(folder / name)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
