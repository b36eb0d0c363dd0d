r"""The one redactor: the keys the library holds are cut out of any text that leaves it.

A key is checked before it is used (``_keys``), so the library's own words never hold
it. A lower library may still quote it: h11 refuses a header by quoting its value
(``Illegal header value b'Bearer sk-...\r'``), a codec error keeps the string it could
not encode. Every key goes through ``Secret``, which registers it here; the few places
where text leaves the library (exception messages, job events and ``to_dict``, the
logger, the command line's printer, the journal's rows) pass it through ``redact``.

A key is cut out as it is and in the escaped forms a lower library prints it in
(``repr`` of the text or of its UTF-8 bytes, JSON, ``printable``), and so is each
stretch of it between characters that would be escaped. Parts shorter than
``MIN_SECRET`` characters are not looked for: a one-letter test key would blank every
"k" in every message.
"""

from __future__ import annotations

import json
import logging
import threading
import traceback

from ._escape import printable

MASK = "***"
# A real KIE key is 32 characters; a shorter stretch is not worth blanking other text for.
MIN_SECRET = 8

_lock = threading.Lock()
_registered: set[str] = set()
# Longest first, so that a form holding a shorter one is cut out whole. Replaced, never
# mutated: readers on any thread see one consistent tuple.
_forms: tuple[str, ...] = ()


class Secret:
    """A string that never shows itself in repr, str or tracebacks; registered for redaction."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        register(value)

    def reveal(self) -> str:
        """The secret itself, for the one place that must send it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


def register(secret: str) -> None:
    """Have ``redact`` cut ``secret`` (and its escaped forms) out of text from now on."""
    global _forms  # noqa: PLW0603 - one registry per process: any text may quote any key
    with _lock:
        if secret in _registered:
            return
        _registered.add(secret)
        forms = set(_forms) | _forms_of(secret)
        _forms = tuple(sorted(forms, key=len, reverse=True))


def redact(text: str) -> str:
    """``text`` with every registered key, in any of its quoted forms, replaced by ``***``."""
    for form in _forms:
        if form in text:
            text = text.replace(form, MASK)
    return text


def holds_secret(text: str) -> bool:
    """Whether ``text`` holds a registered key in any of its forms."""
    return any(form in text for form in _forms)


def redact_chain(error: BaseException) -> None:
    """Redact the messages of ``error`` and of the exceptions it was raised from, in place.

    A lower library's exception stays the ``__cause__`` of ours: a traceback printed by
    the application shows it, and it must not show the key.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if any(isinstance(arg, str) and holds_secret(arg) for arg in current.args):
            current.args = tuple(redact(a) if isinstance(a, str) else a for a in current.args)
        current = current.__cause__ or current.__context__


class RedactingFilter(logging.Filter):
    """Redacts each record of the library's logger, its message and its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite ``record`` in place when it quotes a key; never drops a record."""
        if not _forms:
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format is the handler's to report
            return True
        if holds_secret(message):
            record.msg, record.args = redact(message), None
        if record.exc_info and record.exc_info[1] is not None:
            text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            if holds_secret(text):
                # The formatter prints exc_text as it is; the exception itself is dropped.
                record.exc_text, record.exc_info = redact(text), None
        return True


def _forms_of(secret: str) -> set[str]:
    encoded = secret.encode("utf-8", "surrogatepass")
    whole = {
        secret,
        secret.strip(),
        printable(secret),
        repr(secret)[1:-1],
        repr(encoded)[2:-1],
        json.dumps(secret)[1:-1],
        encoded.decode("latin-1"),  # bytes shown as text by a lower library
    }
    # The stretches between characters any of those forms would escape.
    stretches = "".join(c if c.isascii() and c.isprintable() else "\n" for c in secret)
    parts = whole | set(stretches.split("\n"))
    return {part for part in parts if len(part) >= MIN_SECRET}
