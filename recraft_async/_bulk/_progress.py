"""What the command line shows while it works: a rich progress bar, or plain log lines.

Every line is one line: labels, task ids, URLs and the service's failure messages are
shown with their control characters escaped, so that none can forge a line or restyle
the terminal.
"""

from __future__ import annotations

import math
import sys
import time
from collections import Counter
from typing import TYPE_CHECKING, Any, TextIO

from recraft_async._core._escape import printable

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import TracebackType

    from recraft_async._core._policy import Rate

# States an item passes through; the last four are final.
ACTIVE = ("preparing", "submitting", "downloading")
FINAL = ("done", "skipped", "failed", "uncertain")
# A wait for the submit rate this long is said on a line of its own (once per episode).
THROTTLE_NOTICE = 2.0


def waiting_text(next_submit_in: float | None, in_flight: int) -> str:
    """What the run waits on, in a few words: the submit rate, the service, or nothing."""
    if next_submit_in is not None and next_submit_in >= 1:
        return f"throttled, next submit in {math.ceil(next_submit_in)} s"
    if in_flight:
        return f"waiting on processing ({in_flight} in flight)"
    return ""


def eta_seconds(
    *,
    unsubmitted: int,
    in_flight_ages: Sequence[float],
    submit_rate: Rate | None,
    concurrency: int,
    processing: float | None,
    next_submit_in: float | None = None,
) -> float | None:
    """Seconds until the batch ends, or None before a processing time is known.

    The inputs not yet submitted go at the pace the submit window allows (``submit_rate``,
    e.g. 20 per 10 s), or fewer when ``concurrency`` images of ``processing`` seconds each
    are the bound; the last of them then takes ``processing``. Those in flight (submitted
    ``in_flight_ages`` seconds ago) take what is left of ``processing``. Measuring the
    finished items' rate instead would ignore the throttle: 20 quick submits, then 10 s
    of waiting for each further 20.
    """
    if processing is None:
        return None if unsubmitted or in_flight_ages else 0.0
    tail = max((max(processing - age, 0.0) for age in in_flight_ages), default=0.0)
    if unsubmitted <= 0:
        return tail
    per_second = concurrency / processing
    if submit_rate is not None:
        per_second = min(per_second, submit_rate.n / submit_rate.per)
    submits_end = (next_submit_in or 0.0) + unsubmitted / per_second
    return max(tail, submits_end + processing)


def eta_text(seconds: float | None) -> str:
    """An ETA as a clock ("ETA 1:30"), or "ETA ?" when not known yet."""
    if seconds is None:
        return "ETA ?"
    minutes, secs = divmod(math.ceil(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"ETA {hours}:{minutes:02}:{secs:02}" if hours else f"ETA {minutes}:{secs:02}"


class Reporter:
    """Plain log lines on a stream: one per finished item, for logs and pipes."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.total = 0
        self.counts: Counter[str] = Counter()
        self._where: dict[str, str] = {}
        self._started = time.monotonic()
        self._throttled = False  # within a throttle episode already said

    def __enter__(self) -> Reporter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self, total: int) -> None:
        """Announce how many items the run has."""
        self.total = total
        self._started = time.monotonic()
        self.line(f"{total} image(s) to process")

    def update(self, key: str, state: str, detail: str = "", *, announce: bool = True) -> None:
        """Move item ``key`` to ``state``; ``detail`` says where the output went or why not.

        ``announce=False`` moves the counts without a line of its own (a batch stopped
        for one reason says so once).
        """
        before = self._where.get(key)
        if before is not None and before not in FINAL:
            self.counts[before] -= 1
        self._where[key] = state
        self.counts[state] += 1
        if state in FINAL and announce:
            self.finished(key, state, detail)
        self.refresh()

    def finished(self, key: str, state: str, detail: str) -> None:
        """Report one item that reached a final state."""
        done = sum(self.counts[s] for s in FINAL)
        self.line(f"[{done}/{self.total}] {state:<9} {key}{' -> ' + detail if detail else ''}")

    def waiting(
        self,
        next_submit_in: float | None,
        in_flight: int,
        eta: float | None = None,  # noqa: ARG002 - for the bar; plain lines say no ETA
    ) -> None:
        """What the run waits on, told every second or so (see ``waiting_text``).

        ``eta``: seconds to the end (see ``eta_seconds``), for the bar.

        Plain lines say a long wait for the submit rate once, when it starts; the episode
        ends when nothing waits for the rate any more. ``in_flight`` items wait on the
        service's processing; a line each second about them would be noise.
        """
        if next_submit_in is None:
            self._throttled = False
        elif not self._throttled and next_submit_in >= THROTTLE_NOTICE:
            self._throttled = True
            self.line(f"{waiting_text(next_submit_in, in_flight)} (the submit rate limit)")

    def refresh(self) -> None:
        """Redraw the progress display; plain lines have none."""

    def line(self, text: str) -> None:
        """Print one message, on one line."""
        print(f"recraft-async: {printable(text)}", file=self.stream, flush=True)

    def close(self) -> None:
        """Stop drawing."""

    def rate(self) -> float:
        """Items finished per second so far."""
        elapsed = max(time.monotonic() - self._started, 1e-6)
        return sum(self.counts[s] for s in FINAL) / elapsed


class RichReporter(Reporter):
    """A live progress bar with counts per state, throughput and ETA (needs ``rich``)."""

    def __init__(self, stream: TextIO | None = None, *, width: int | None = None) -> None:
        """``width``: the columns to draw in (default: the terminal's)."""
        super().__init__(stream)
        # Imported here: rich is the `cli` extra, not a dependency of the library.
        from rich.console import Console  # noqa: PLC0415

        self.console = Console(file=self.stream, width=width)
        self._progress: Any = _progress_bar(self.console)
        self._task: Any = None

    def start(self, total: int) -> None:
        """Start the bar."""
        self.total = total
        self._started = time.monotonic()
        self._progress.start()
        self._task = self._progress.add_task("", total=total, states="", speed="", eta="ETA ?")

    def waiting(
        self, next_submit_in: float | None, in_flight: int, eta: float | None = None
    ) -> None:
        """Show what the run waits on and the ETA in the bar, and refresh the rest."""
        if self._task is None:
            return
        self._progress.update(
            self._task, description=waiting_text(next_submit_in, in_flight), eta=eta_text(eta)
        )
        self.refresh()

    def finished(self, key: str, state: str, detail: str) -> None:
        """Print failures and uncertainties above the bar; successes and skips only move it."""
        if state not in ("done", "skipped"):
            # Imported here: rich is the `cli` extra, not a dependency of the library.
            from rich.markup import escape  # noqa: PLC0415

            colour = "red" if state == "failed" else "yellow"
            # Escaped twice: no control characters, and no markup ("[bold]") of its own.
            shown = escape(printable(f"{key}: {detail}"))
            self.console.print(f"[{colour}]{state}[/] {shown}", markup=True, highlight=False)

    def refresh(self) -> None:
        """Update counts, throughput and completion."""
        if self._task is None:
            return
        parts = [f"{s} {self.counts[s]}" for s in (*ACTIVE, *FINAL) if self.counts[s]]
        self._progress.update(
            self._task,
            completed=sum(self.counts[s] for s in FINAL),
            states=" · ".join(parts),
            speed=f"{self.rate() * 60:.1f}/min",
        )

    def line(self, text: str) -> None:
        """Print a message above the bar, on one line."""
        self.console.print(printable(text), markup=False, highlight=False)

    def close(self) -> None:
        """Leave the final bar on screen."""
        if self._task is not None:
            self.refresh()
        self._progress.stop()


def _progress_bar(console: Any) -> Any:
    """The bar's columns, fitting any width down to 60: what does not fit is cut short.

    The bar, the count and the ETA keep their width; the state counts, the speed and what
    the run waits on give way (ellipsis), so that a narrow terminal still has one line.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn  # noqa: PLC0415
    from rich.table import Column  # noqa: PLC0415

    def shrinking(template: str, ratio: int) -> TextColumn:
        column = Column(no_wrap=True, overflow="ellipsis", ratio=ratio, min_width=1)
        return TextColumn(template, table_column=column)

    return Progress(
        BarColumn(bar_width=16),
        MofNCompleteColumn(table_column=Column(no_wrap=True)),
        TextColumn("{task.fields[eta]}", table_column=Column(no_wrap=True)),
        shrinking("{task.fields[states]}", 3),
        shrinking("{task.fields[speed]}", 1),
        # Last, so that the bar stays put as the text comes and goes.
        shrinking("{task.description}", 2),
        console=console,
        transient=False,
        expand=True,
    )


class QuietReporter(Reporter):
    """No progress at all (``--quiet``): the summary and errors say what happened."""

    def start(self, total: int) -> None:
        """Count, silently."""
        self.total = total

    def finished(self, key: str, state: str, detail: str) -> None:
        """Nothing per item."""

    def waiting(
        self, next_submit_in: float | None, in_flight: int, eta: float | None = None
    ) -> None:
        """Nothing about waits."""

    def line(self, text: str) -> None:
        """Nothing: a quiet run prints its summary only."""


def make_reporter(*, quiet_bar: bool = False) -> Reporter:
    """A rich bar on a terminal (when rich is installed), else plain lines."""
    if not quiet_bar and sys.stdout.isatty() and sys.stderr.isatty():
        try:
            return RichReporter()
        except ImportError:
            pass
    return Reporter()
