"""A missing extra is named with the install line that works where the package is (a clone)."""

import pytest

import recraft_async as ra
from recraft_async import _settings
from recraft_async._core._extras import needs_extra


def test_the_message_names_the_extra_its_packages_and_the_clone_install():
    """One wording: what needs it, the extra, what it brings, ``pip install '.[extra]'``."""
    message = needs_extra("RedisCoordination", "redis", "coredis")
    assert message.startswith("RedisCoordination needs the package's 'redis' extra (coredis)")
    assert "pip install '.[redis]'" in message
    assert "recraft-async[" not in message  # not on PyPI yet: that line would fail


def test_tracing_demanded_without_opentelemetry_says_how_to_install_it(monkeypatch):
    """tracing=True without OpenTelemetry: InvalidInputError with the otel extra's line."""
    monkeypatch.setattr(_settings, "_otel_installed", lambda: False)
    with pytest.raises(ra.InvalidInputError, match=r"pip install '\.\[otel\]'"):
        ra.AsyncRecraft(api_key="k", tracing=True)
