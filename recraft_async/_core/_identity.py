"""One input's identity, computed once per input and carried with its job.

The journal's key, the fleet's claim key and the folder an upload goes into all read the
same ``InputIdentity``: a local image's bytes are hashed once, whoever asks.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import attrs

from ._models import Operation

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._check import SubmitRequest

_BLOCK = 1 << 20


@attrs.frozen
class InputIdentity:
    """Who an input is: its work's key, and the hash of its image's bytes (None: a URL)."""

    # The operation, the input and the parameters: the journal's key, the fleet's claim key.
    key: str
    # The SHA-256 of a local image's bytes, in hex: names its upload folder.
    content: str | None


def identify(
    operation: Operation, source: bytes | str | Path, params: Mapping[str, Any]
) -> InputIdentity:
    """The identity of one unit of work: operation, input (bytes' hash or URL), parameters."""
    content: str | None = None
    if isinstance(source, Path):
        digest = hashlib.sha256()
        with source.open("rb") as handle:
            for block in iter(lambda: handle.read(_BLOCK), b""):
                digest.update(block)
        content = digest.hexdigest()
    elif isinstance(source, bytes):
        content = hashlib.sha256(source).hexdigest()
    image = "url:" + source if isinstance(source, str) else "sha256:" + str(content)
    clean = {k: v for k, v in params.items() if v is not None}
    text = json.dumps([Operation(operation).value, image, clean], sort_keys=True, default=str)
    return InputIdentity(hashlib.sha256(text.encode()).hexdigest(), content)


def fingerprint(operation: Operation, source: bytes | str | Path, params: Mapping[str, Any]) -> str:
    """The key of one unit of work (``identify``'s ``key``)."""
    return identify(operation, source, params).key


async def identify_request(request: SubmitRequest, data: bytes | None = None) -> InputIdentity:
    """The identity of ``request``'s input; ``data``: its bytes when already read.

    Without ``data`` a local file is hashed as it is read, in a worker thread.
    """
    local = request.local
    source: bytes | Path | str = request.source
    if data is not None:
        source = data
    elif local is not None and local.data is not None:
        source = local.data
    elif local is not None and local.path is not None:
        source = local.path
    if not isinstance(source, Path):
        # A URL, or bytes in memory (at most KIE's 10 MB: milliseconds of hashing): only
        # a file is read, and so hashed, in a worker thread.
        return identify(request.operation, source, request.params)
    return await anyio.to_thread.run_sync(identify, request.operation, source, request.params)
