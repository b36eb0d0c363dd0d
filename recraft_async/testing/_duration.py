"""How long the emulated service takes to process one task."""

from __future__ import annotations

import math
import random

import attrs

_KINDS = ("fixed", "uniform", "lognormal")


def _non_negative(_inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value >= 0 or math.isinf(value):
        raise ValueError(f"{attribute.name} must be a finite number >= 0, got {value!r}")


@attrs.frozen
class Duration:
    """A distribution of processing times in (unscaled) seconds.

    Build one with ``fixed``, ``uniform`` or ``lognormal``, or parse the command line's
    spelling with ``parse``.
    """

    kind: str = attrs.field(validator=attrs.validators.in_(_KINDS))
    a: float = attrs.field(validator=_non_negative)
    b: float = attrs.field(default=0.0, validator=_non_negative)

    @classmethod
    def fixed(cls, seconds: float) -> Duration:
        """Every task takes exactly ``seconds``."""
        return cls("fixed", seconds)

    @classmethod
    def uniform(cls, low: float, high: float) -> Duration:
        """Uniformly between ``low`` and ``high`` seconds."""
        if high < low:
            raise ValueError("uniform: high must be >= low")
        return cls("uniform", low, high)

    @classmethod
    def lognormal(cls, median: float, sigma: float) -> Duration:
        """Log-normal with the given median and spread ``sigma`` (of the underlying normal).

        Service times are skewed: most tasks finish near the median, a few take far longer.
        """
        return cls("lognormal", median, sigma)

    @classmethod
    def parse(cls, text: str) -> Duration:
        """Parse ``fixed:2``, ``uniform:1,3`` or ``lognormal:median=20,sigma=0.5``."""
        kind, _, rest = text.partition(":")
        kind = kind.strip().lower()
        try:
            if kind == "fixed":
                return cls.fixed(float(rest))
            values = [part.strip() for part in rest.split(",") if part.strip()]
            if kind == "uniform":
                low, high = (float(v.rpartition("=")[2]) for v in values)
                return cls.uniform(low, high)
            if kind == "lognormal":
                named = dict(v.split("=", 1) for v in values)
                return cls.lognormal(float(named["median"]), float(named["sigma"]))
        except (KeyError, ValueError) as exc:
            raise ValueError(f"bad duration {text!r}: {exc}") from exc
        raise ValueError(f"bad duration {text!r}: kind must be one of {', '.join(_KINDS)}")

    def sample(self, rng: random.Random) -> float:
        """One processing time in seconds, before the emulator's time scale."""
        if self.kind == "fixed":
            return self.a
        if self.kind == "uniform":
            return rng.uniform(self.a, self.b)
        if self.a == 0:
            return 0.0
        return rng.lognormvariate(math.log(self.a), self.b)
