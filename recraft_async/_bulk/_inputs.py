"""The command line's INPUT arguments: files, folders, URLs and @lists, expanded to items."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from recraft_async._core._limits import IMAGE_SUFFIXES

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

# An @list may name other @lists; a cycle must end somewhere.
_MAX_LIST_DEPTH = 8
# "ftp://", "s3://", "file://"...: a URL, not a path, whatever its scheme (RFC 3986).
_ANY_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@attrs.frozen
class InputItem:
    """One image to process: a local file or a URL, or a problem found while listing it.

    ``mistyped`` marks the problem of a command-line argument itself (a path that is not
    there, an @list that cannot be read), as opposed to a line of a list: the command line
    refuses to run on it, where a list's bad line fails alone.
    """

    label: str
    path: Path | None = None
    url: str | None = None
    problem: str | None = None
    mistyped: bool = False

    @property
    def source(self) -> str:
        """What the journal records: the absolute path or the URL."""
        if self.path is not None:
            return str(self.path)
        return self.url or self.label


def is_url(text: str) -> bool:
    """Whether an INPUT is an http(s) URL rather than a path."""
    return text.lower().startswith(("http://", "https://"))


def expand_inputs(args: Iterable[str], *, exclude: Path | None = None) -> list[InputItem]:
    """Expand INPUT arguments in order; duplicates are kept once, problems become items."""
    skip = exclude.resolve() if exclude is not None else None
    seen: set[str] = set()
    labels: set[str] = set()
    items: list[InputItem] = []
    for item in _expand(args, Path.cwd(), skip, depth=0):
        key = item.source if item.problem is None else f"!{item.label}"
        if key in seen:
            continue
        seen.add(key)
        if item.label in labels:  # "a.png" from two lists in two folders: say which one
            item = attrs.evolve(item, label=item.source)  # noqa: PLW2901
        labels.add(item.label)
        items.append(item)
    return items


def _expand(
    args: Iterable[str], base: Path, skip: Path | None, *, depth: int
) -> Iterator[InputItem]:
    for raw in args:
        arg = raw.strip()
        if not arg:
            continue
        if is_url(arg):
            yield InputItem(arg, url=arg)
        elif _ANY_URL.match(arg):
            # Said as it is, rather than "no such file": the input is a URL we cannot take.
            scheme = arg.partition(":")[0].lower()
            hint = "; give a local file as its path" if scheme == "file" else ""
            yield InputItem(arg, problem=f"{arg}: only http(s) URLs are accepted{hint}")
        elif arg.startswith("@"):
            yield from _expand_list(arg, base, skip, depth=depth)
        else:
            yield from _expand_path(arg, base / arg, skip, given=depth == 0)


def _expand_list(arg: str, base: Path, skip: Path | None, *, depth: int) -> Iterator[InputItem]:
    list_path = base / arg[1:]
    if depth >= _MAX_LIST_DEPTH:
        yield InputItem(arg, problem=f"{arg}: lists nested too deep")
        return
    try:
        text = list_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problem = f"{arg}: cannot read the list ({_reason(exc)})"
        yield InputItem(arg, problem=problem, mistyped=depth == 0)
        return
    lines = [line.strip() for line in text.splitlines()]
    entries = [line for line in lines if line and not line.startswith("#")]
    # Relative paths in a list are relative to the list, so it works from any folder.
    yield from _expand(entries, list_path.parent, skip, depth=depth + 1)


def _expand_path(arg: str, path: Path, skip: Path | None, *, given: bool) -> Iterator[InputItem]:
    """The images of a file or folder; ``given``: named on the command line, not in a list."""
    try:
        if path.is_dir():
            yield from _walk(arg, path, skip)
            return
        if not path.exists():
            yield InputItem(arg, problem=f"{arg}: no such file or folder", mistyped=given)
            return
    except OSError as exc:
        yield InputItem(arg, problem=f"{arg}: {_reason(exc)}", mistyped=given)
        return
    # A file named explicitly is tried whatever its suffix: the probe says what is wrong.
    yield InputItem(arg, path=path.resolve())


def _walk(arg: str, folder: Path, skip: Path | None) -> Iterator[InputItem]:
    if skip is not None and folder.resolve() == skip:
        return
    found: list[Path] = []
    for root, dirs, files in os.walk(folder):
        here = Path(root)
        # Hidden folders and our own output folder are never inputs (no re-upscaling).
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (here / d).resolve() != skip)
        found.extend(
            here / f
            for f in files
            if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_SUFFIXES
        )
    for path in sorted(found):
        # Labels read as the user typed the folder: "photos/a.png", not an absolute path.
        label = os.path.normpath(os.path.join(arg, path.relative_to(folder)))  # noqa: PTH118
        yield InputItem(label, path=path.resolve())


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return type(exc).__name__
