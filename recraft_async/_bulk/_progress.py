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
    from types import TracebackType

# States an item passes through; the last three are final.
ACTIVE = ("preparing", "submitting", "downloading")
FINAL = ("done", "failed", "uncertain")
# A wait for the submit rate this long is said on a line of its own (once per episode).
THROTTLE_NOTICE = 2.0


def waiting_text(next_submit_in: float | None, in_flight: int) -> str:
    """What the run waits on, in a few words: the submit rate, the service, or nothing."""
    if next_submit_in is not None and next_submit_in >= 1:
        return f"throttled, next submit in {math.ceil(next_submit_in)} s"
    if in_flight:
        return f"waiting on processing ({in_flight} in flight)"
    return ""


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

    def waiting(self, next_submit_in: float | None, in_flight: int) -> None:
        """What the run waits on, told every second or so (see ``waiting_text``).

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

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        # Imported here: rich is the `cli` extra, not a dependency of the library.
        from rich.console import Console  # noqa: PLC0415
        from rich.progress import (  # noqa: PLC0415
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.console = Console(file=self.stream)
        self._progress: Any = Progress(
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("{task.fields[states]}"),
            TextColumn("{task.fields[speed]}"),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            # Last, so that the bar stays put as the text comes and goes.
            TextColumn("{task.description}"),
            console=self.console,
            transient=False,
        )
        self._task: Any = None

    def start(self, total: int) -> None:
        """Start the bar."""
        self.total = total
        self._started = time.monotonic()
        self._progress.start()
        self._task = self._progress.add_task("", total=total, states="", speed="")

    def waiting(self, next_submit_in: float | None, in_flight: int) -> None:
        """Show what the run waits on in the bar's description, and refresh the rest."""
        if self._task is None:
            return
        self._progress.update(self._task, description=waiting_text(next_submit_in, in_flight))
        self.refresh()

    def finished(self, key: str, state: str, detail: str) -> None:
        """Print failures and uncertainties above the bar; successes only move it."""
        if state != "done":
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


class QuietReporter(Reporter):
    """No progress at all (``--quiet``): the summary and errors say what happened."""

    def start(self, total: int) -> None:
        """Count, silently."""
        self.total = total

    def finished(self, key: str, state: str, detail: str) -> None:
        """Nothing per item."""

    def waiting(self, next_submit_in: float | None, in_flight: int) -> None:
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
