"""The public face: __all__ is exactly the public names, and nothing leaks."""

import inspect
import pydoc
from importlib.resources import files

import pytest

import recraft_async
from recraft_async import errors


def _public_names(module):
    # dir(), not vars(): the package imports most of its names when first used (PEP 562).
    return {
        name
        for name, value in ((name, getattr(module, name)) for name in dir(module))
        if not name.startswith("_")
        and not inspect.ismodule(value)
        and name not in {"annotations", "TYPE_CHECKING"}
    }


def test_all_matches_public_names():
    """Every public name is in __all__ and every name in __all__ exists."""
    assert set(recraft_async.__all__) == _public_names(recraft_async) | {"__version__"}
    assert sorted(recraft_async.__all__) == recraft_async.__all__


def test_errors_all_matches_public_names():
    """recraft_async.errors' __all__ lists its exception classes, all re-exported."""
    assert set(errors.__all__) == _public_names(errors)
    assert set(errors.__all__) <= set(recraft_async.__all__)


def test_every_error_has_a_one_line_docstring():
    """Each exception class says what it is in one line."""
    for name in errors.__all__:
        doc = getattr(errors, name).__doc__
        assert doc, name
        assert "\n" not in doc.strip(), name


def test_error_tree_shape():
    """The documented hierarchy holds, including the builtin bases."""
    assert issubclass(errors.InvalidInputError, ValueError)
    assert issubclass(errors.ClientNotOpenError, RuntimeError)
    for name in (
        "AuthenticationError",
        "InsufficientCreditsError",
        "NotFoundError",
        "InvalidRequestError",
        "RateLimitError",
        "ServiceUnavailableError",
        "ServerError",
        "GenerationFailedError",
    ):
        assert issubclass(getattr(errors, name), errors.APIError)
    assert issubclass(errors.APITimeoutError, errors.APIConnectionError)
    assert issubclass(errors.WebhookReplayError, errors.WebhookVerificationError)
    assert issubclass(errors.ResultUnavailableError, errors.DownloadError)
    assert issubclass(errors.DownloadWriteError, errors.DownloadError)
    assert issubclass(errors.DownloadWriteError, OSError)
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.RecraftError)


def test_py_typed_ships():
    """The package declares its type hints."""
    assert files("recraft_async").joinpath("py.typed").is_file()


def test_client_takes_keywords_only_each_documented():
    """AsyncRecraft's parameters are keyword-only, and help() explains every one."""
    parameters = list(inspect.signature(recraft_async.AsyncRecraft).parameters.values())
    assert parameters
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters)
    with pytest.raises(TypeError):
        recraft_async.AsyncRecraft("k")  # type: ignore[call-arg]
    doc = inspect.getdoc(recraft_async.AsyncRecraft) or ""
    args = doc.split("Args:", 1)[1].split("Raises:", 1)[0]
    for parameter in parameters:
        assert f"\n    {parameter.name}: " in f"\n{args}", parameter.name
    assert "max_in_flight:" in pydoc.render_doc(recraft_async.AsyncRecraft)
