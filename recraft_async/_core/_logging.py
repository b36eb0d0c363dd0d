"""The library's logger, and ``RECRAFT_LOG``: its level and a handler, as ``OPENAI_LOG`` does.

``RECRAFT_LOG=info`` shows each job's life (queued, submitted, finished); ``debug`` adds
retries and downloads. The variable is read when the package is imported and again when
a client is made; either way the logger gets one handler (on stderr) and no more. Any
other value is ignored with one warning. Without the variable nothing is configured: the
logger is an ordinary one, for the application's own logging set-up to handle.

URLs are logged without their query string (see ``loggable_url``); httpx's own logger,
which shows every URL whole, is left alone. A record that quotes a key (a lower library's
message) has it cut out (``RedactingFilter``).
"""

from __future__ import annotations

import logging
import os
import sys

from ._redact import RedactingFilter

LOGGER_NAME = "recraft_async"
ENV_VAR = "RECRAFT_LOG"
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO}
FORMAT = "[%(asctime)s - %(name)s:%(lineno)d - %(levelname)s] %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"

logger = logging.getLogger(LOGGER_NAME)
# Every module logs on this one logger: its filter sees (and redacts) each record before
# any handler, ours or the application's, formats it.
logger.addFilter(RedactingFilter())
_warned: set[str] = set()


class StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is when a record comes, not when it was made."""

    def emit(self, record: logging.LogRecord) -> None:
        """Write one formatted record on its own line."""
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:  # noqa: BLE001 - logging's own convention: report, never raise
            self.handleError(record)


def env_level() -> int | None:
    """The level ``RECRAFT_LOG`` asks for, or None (unset, empty or not understood)."""
    value = os.environ.get(ENV_VAR, "").strip()
    if not value:
        return None
    level = LEVELS.get(value.lower())
    if level is None and value not in _warned:
        _warned.add(value)  # once per value, not once per client
        logger.warning(
            "%s=%r is not one of %s; ignored", ENV_VAR, value[:40], ", ".join(sorted(LEVELS))
        )
    return level


def setup_from_env() -> None:
    """Configure the library's logger from ``RECRAFT_LOG``; idempotent."""
    level = env_level()
    if level is None:
        return
    logger.setLevel(level)
    if not any(isinstance(handler, StderrHandler) for handler in logger.handlers):
        handler = StderrHandler()
        handler.setFormatter(logging.Formatter(FORMAT, DATE_FORMAT))
        logger.addHandler(handler)
