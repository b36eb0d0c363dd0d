"""A result's image onto disk: its URL, else once a fresh link from KIE; every failure typed.

KIE keeps result files for a while only (24 hours on one page, 14 days on another) and its
storage may refuse a plain result URL or a link that has expired. KIE's common API
(``POST /api/v1/common/download-url``, whichever dialect made the task) turns a result URL
it generated into a temporary link, valid 20 minutes: the one documented way back to a
paid image once the host refuses.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ._errors import (
    DownloadError,
    DownloadWriteError,
    ProtocolError,
    RecraftError,
    ResultUnavailableError,
)
from ._escape import loggable_url
from ._files import (
    DEFAULT_DOWNLOAD_DEADLINE,
    DEFAULT_MAX_DOWNLOAD_BYTES,
    HostRefusedError,
    download_to,
)
from ._transport import url_problem

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

    import httpx

    from ._transport import Transport

logger = logging.getLogger("recraft_async")

DOWNLOAD_URL_PATH = "/api/v1/common/download-url"


async def fresh_link(transport: Transport, url: str) -> str:
    """KIE's temporary link (valid 20 minutes) to the result file at ``url``."""
    data, body = await transport.request_json(
        "POST",
        DOWNLOAD_URL_PATH,
        json={"url": url},
        # It only makes a link: asking twice costs nothing.
        idempotent=True,
    )
    if not isinstance(data, str) or url_problem(data) is not None:
        raise ProtocolError("the download-url answer has no usable link in data", body=body)
    return data


async def save_result(
    http: httpx.AsyncClient,
    url: str,
    dest: Path,
    name: str,
    *,
    task_id: str,
    link_for: Callable[[str], Awaitable[str]],
    max_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
    deadline: float = DEFAULT_DOWNLOAD_DEADLINE,
    part_tag: str = "",
) -> Path:
    """``download_to``, asking ``link_for`` once for a fresh link when the result host refuses.

    A bad URL is a DownloadError, the host refusing both a ResultUnavailableError, local
    trouble a DownloadWriteError: each keeps the task id, the URL and ``dest``.
    """
    problem = url_problem(url)
    if problem is not None:
        raise DownloadError(
            f"task {task_id} result URL {loggable_url(url)} is not usable: {problem}",
            task_id=task_id,
            url=url,
            path=dest,
        )

    async def save(link: str) -> Path:
        try:
            return await download_to(
                http, link, dest, name, max_bytes=max_bytes, deadline=deadline, part_tag=part_tag
            )
        except OSError as exc:
            raise DownloadWriteError(
                f"cannot save the result of task {task_id} in {dest}:"
                f" {exc.strerror or type(exc).__name__}",
                task_id=task_id,
                url=url,
                path=dest,
                cause=exc,
            ) from exc

    try:
        return await save(url)
    except HostRefusedError as exc:
        refused = exc
    logger.info(
        "task %s: the result host answered HTTP %d; asking KIE for a fresh link",
        task_id,
        refused.status,
    )
    # "task ID result: ...": the command line's reasons drop the id, keep "task result".
    why = f"task {task_id} result: {refused}"
    try:
        link = await link_for(url)
    except RecraftError as exc:
        raise ResultUnavailableError(
            f"{why}, and KIE made no fresh link: {exc}", task_id=task_id, url=url, path=dest
        ) from exc
    try:
        return await save(link)
    except HostRefusedError as exc:
        raise ResultUnavailableError(
            f"{why}, and its fresh link too (HTTP {exc.status})",
            task_id=task_id,
            url=url,
            path=dest,
        ) from exc
