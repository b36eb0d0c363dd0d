"""The ``recraft-async`` command's entry point: ``--version`` answered before the CLI loads.

The CLI imports httpx, anyio, rich and the whole client; a bare ``--version`` needs none
of them (issue 23: under 200 ms).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """``recraft-async --version`` at once; anything else is the CLI's (``cli.main``)."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args == ["--version"]:
        from ._version import __version__  # noqa: PLC0415 - the one thing it needs

        sys.stdout.write(f"recraft-async {__version__}\n")
        return 0
    from .cli import main as cli_main  # noqa: PLC0415 - the CLI's imports only when used

    return cli_main(argv)
