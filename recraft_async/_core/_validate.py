"""The checks of plain arguments: numbers, seconds, counts and flags, one rule each.

Every public entry (``AsyncRecraft``, ``with_options``, ``Rate``, ``PollPolicy``,
``RedisCoordination``, ``download``, ``parse_callback``, ...) checks its numbers and flags
here, so that the same value gets the same answer everywhere. The rules: a bool is never a
number (``True`` is not 1 second); a number is finite (no NaN, no infinity); a bad value
is an ``InvalidInputError`` (a ``ValueError``) naming the parameter, raised before
anything is sent. Each function returns the value it accepted (a number as a ``float``).
"""

from __future__ import annotations

import math
from typing import Any, TypeVar

import attrs

from ._errors import InvalidInputError

T = TypeVar("T")


def _number(name: str, value: object, *, none: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        kind = "a number or None" if none else "a number"
        raise InvalidInputError(f"{name} must be {kind}, got {type(value).__name__}")
    return float(value)


def positive(name: str, value: object) -> float:
    """A finite number > 0: a timeout, a window, a median."""
    number = _number(name, value, none=False)
    if not (number > 0 and math.isfinite(number)):
        raise InvalidInputError(f"{name} must be a finite number > 0, got {value!r}")
    return number


def optional_positive(name: str, value: object) -> float | None:
    """None, or a finite number > 0."""
    if value is None:
        return None
    number = _number(name, value, none=True)
    if not (number > 0 and math.isfinite(number)):
        raise InvalidInputError(f"{name} must be a finite number > 0 or None, got {value!r}")
    return number


def non_negative(name: str, value: object) -> float:
    """A finite number >= 0: a grace period, where none at all is meaningful."""
    number = _number(name, value, none=False)
    if not (number >= 0 and math.isfinite(number)):
        raise InvalidInputError(f"{name} must be a finite number >= 0, got {value!r}")
    return number


def integer(name: str, value: object, *, minimum: int) -> int:
    """An int (not a bool) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidInputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def optional_integer(name: str, value: object, *, minimum: int) -> int | None:
    """None, or an int (not a bool) >= ``minimum``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidInputError(f"{name} must be an integer >= {minimum} or None, got {value!r}")
    return value


def boolean(name: str, value: object) -> bool:
    """True or False: no 0, 1 or "yes"."""
    if not isinstance(value, bool):
        raise InvalidInputError(f"{name} must be True or False, got {value!r}")
    return value


def optional_boolean(name: str, value: object) -> bool | None:
    """True, False or None."""
    if value is not None and not isinstance(value, bool):
        raise InvalidInputError(f"{name} must be True, False or None, got {value!r}")
    return value


def instance(name: str, value: object, kind: type[T], what: str) -> T:
    """A ``kind`` (named ``what`` in the message)."""
    if not isinstance(value, kind):
        raise InvalidInputError(f"{name} must be {what}, got {type(value).__name__}")
    return value


def optional_instance(name: str, value: object, kind: type[T], what: str) -> T | None:
    """None, or a ``kind`` (named ``what`` in the message)."""
    if value is not None and not isinstance(value, kind):
        raise InvalidInputError(f"{name} must be {what} or None, got {type(value).__name__}")
    return value


# The same rules as attrs validators, naming the field as ``Class.field``.


def positive_field(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """``positive`` for an attrs field."""
    positive(f"{type(inst).__name__}.{attribute.name}", value)


def integer_field(minimum: int) -> Any:
    """``integer`` (>= ``minimum``) for an attrs field."""

    def check(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
        integer(f"{type(inst).__name__}.{attribute.name}", value, minimum=minimum)

    return check


def boolean_field(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """``boolean`` for an attrs field."""
    boolean(f"{type(inst).__name__}.{attribute.name}", value)
