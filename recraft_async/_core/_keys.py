"""A key is checked once, where it enters: surrounding whitespace goes, the rest must fit.

A ``.env`` file written on Windows leaves a CR on each value; a key file ends with a
newline. Such whitespace is stripped. What is left must be able to go into an HTTP
header as it is: printable ASCII. A key that cannot is refused with an
``InvalidInputError`` that says what is wrong and where, never what the key is, before
anything is sent (h11 would refuse the header later, quoting the key in its message).
"""

from __future__ import annotations

import os

from ._errors import InvalidInputError

_DEL = 0x7F


def checked_key(value: object, name: str) -> str:
    """``value`` without surrounding whitespace, if it can go into a header; else refused.

    ``name`` says which key it is in the message ("the API key", "KIE_WEBHOOK_KEY").
    """
    if not isinstance(value, str):
        raise InvalidInputError(f"{name} must be a str, got {type(value).__name__}")
    key = value.strip()
    if not key:
        raise InvalidInputError(f"{name} is empty once surrounding whitespace is stripped")
    problem = _first_problem(key)
    if problem is not None:
        raise InvalidInputError(
            f"{name} contains {problem}; a key is printable ASCII (surrounding whitespace is"
            " stripped, nothing else)"
        )
    return key


def _first_problem(key: str) -> str | None:
    """The first character a header cannot carry, as words; positions count from 1."""
    for index, char in enumerate(key, start=1):
        code = ord(char)
        if code > _DEL:
            return f"a non-ASCII character at position {index}"
        if code < ord(" ") or code == _DEL:
            return f"a control character at position {index}"
    return None


def key_from(value: str | None, env_var: str, name: str) -> str | None:
    """The key given, else the environment's, checked; None when neither is set (or empty).

    A key from the environment is named by its variable in a message, so that the user
    knows which line of which ``.env`` to fix.
    """
    if value is not None:
        return checked_key(value, name) if value != "" else None
    from_env = os.environ.get(env_var)
    return checked_key(from_env, f"{name} (${env_var})") if from_env else None
