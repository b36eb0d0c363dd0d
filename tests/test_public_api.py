"""The public face: __all__ is exactly the public names, and nothing leaks."""

import inspect
from importlib.resources import files

import recraft_async
from recraft_async import errors


def _public_names(module):
    return {
        name
        for name, value in vars(module).items()
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
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.RecraftError)


def test_py_typed_ships():
    """The package declares its type hints."""
    assert files("recraft_async").joinpath("py.typed").is_file()
