"""Text from the service, made safe for one line of a log or a terminal.

A task id, URL or failure message comes from the network: a newline in it would forge a
log line, an ANSI escape would restyle or hide the terminal's output. Everything such a
value holds that is not printable is shown as a Python-style escape instead.

A result URL may be presigned: its query string is a credential to the image for as long
as it lasts, and so may an input URL. ``loggable_url`` shows a URL without its query and
fragment; ``loggable_source`` does so for a job's input when it is a URL.
"""

from __future__ import annotations

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(value: object) -> str:
    r"""``value`` as text with its control and other unprintable characters escaped.

    Printable text (any script) is kept as it is; a newline shows as ``\n`` on the same
    line, an ANSI escape as ``\x1b[31m``, a line separator as ``\u2028``.
    """
    text = value if isinstance(value, str) else str(value)
    if text.isprintable():  # the common case, checked in C
        return text
    return "".join(char if char.isprintable() else _escaped(char) for char in text)


def loggable_url(url: object) -> str:
    """``url`` without its query string and fragment, escaped like ``printable``.

    Presigned storage URLs carry their signature in the query; a log or an error message
    says which object was fetched, never the means to fetch it again.
    """
    text = url if isinstance(url, str) else str(url)
    cut = min((i for i in (text.find("?"), text.find("#")) if i >= 0), default=-1)
    return printable(text if cut < 0 else text[:cut])


def loggable_source(source: object) -> str:
    """What a job was made from, for a log line: an http(s) URL without its query.

    An input URL may be presigned as much as a result URL; a path or a bytes note is only
    escaped.
    """
    text = source if isinstance(source, str) else str(source)
    if text[:8].lower().startswith(("http://", "https://")):
        return loggable_url(text)
    return printable(text)


def _escaped(char: str) -> str:
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"
