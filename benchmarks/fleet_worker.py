"""One worker of a fleet on one KIE key: drives its images, prints one JSON line of results.

Started by ``benchmarks/fleet.py`` and by ``tests/fleet/test_fleet_processes.py``, several at
once, against one emulator (and one Redis with ``--redis``). With ``--listen`` it serves
KIE's callbacks on a loopback port and hands each to ``client.handle_callback``: with
coordination, the job it concerns wakes in whichever worker polls that task.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import anyio.to_thread

import recraft_async as ra

_MAX_HEADER = 64 * 1024


def _rate(text: str) -> ra.Rate:
    count, _, per = text.partition("/")
    return ra.Rate(int(count), per=float(per))


def _poll(text: str) -> ra.PollPolicy:
    initial, factor, max_interval, timeout = (float(x) for x in text.split(","))
    return ra.PollPolicy(initial=initial, factor=factor, max_interval=max_interval, timeout=timeout)


async def _serve_callbacks(
    client: ra.AsyncRecraft,
    port: int,
    received: list[str],
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """A minimal HTTP/1.1 endpoint on 127.0.0.1: each POST body goes to handle_callback."""

    async def handle(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            data = b""
            while b"\r\n\r\n" not in data and len(data) < _MAX_HEADER:
                data += await stream.receive()
            head, _, body = data.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")[1:]
            headers = dict(line.split(": ", 1) for line in lines if ": " in line)
            length = int({k.lower(): v for k, v in headers.items()}.get("content-length", "0"))
            while len(body) < length:
                body += await stream.receive()
            try:
                job = client.handle_callback(body, headers)
            except ra.RecraftError:
                received.append("refused")
            else:
                received.append("local" if job is not None else "forwarded")
            await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=port)
    async with listener:
        task_status.started()
        await listener.serve(handle)


async def run(args: argparse.Namespace, images: list[str]) -> dict[str, Any]:
    """Drive every image; the report of this worker."""
    coordination = (
        None
        if args.redis == "none"
        else ra.RedisCoordination(
            args.redis, namespace=args.namespace, allow_volatile=args.allow_volatile
        )
    )
    received: list[str] = []
    outcomes: Counter[str] = Counter()
    task_ids: dict[str, str] = {}
    finished: list[float] = []
    async with (
        ra.AsyncRecraft(
            api_key=args.api_key,
            base_url=args.base_url,
            submit_rate=_rate(args.submit_rate),
            read_rate=_rate(args.read_rate),
            poll=_poll(args.poll),
            max_in_flight=args.max_in_flight,
            coordination=coordination,
        ) as client,
        anyio.create_task_group() as group,
    ):
        if args.listen:
            await group.start(_serve_callbacks, client, args.listen, received)
        # The fleet starts at once: each worker says it is ready (its client open, its
        # listener up), then waits for the word to go on its standard input.
        print("ready", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.readline)
        started = time.time()
        callback = args.callback_url or None
        jobs = [client.upscale(image, callback_url=callback) for image in images]
        async for job in client.as_completed(jobs):
            error = job.exception()
            outcomes[type(error).__name__ if error else "ok"] += 1
            if error is None:
                task_ids[job.source or ""] = job.result().task_id
            finished.append(time.time())
        group.cancel_scope.cancel()
    return {
        "jobs": len(images),
        "outcomes": dict(outcomes),
        "task_ids": task_ids,
        "started": started,
        "last_result": max(finished, default=started),
        "callbacks": dict(Counter(received)),
    }


def parser() -> argparse.ArgumentParser:
    """The worker's options."""
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--base-url", required=True)
    cli.add_argument("--api-key", default="emulator-key")
    cli.add_argument("--images", required=True, help="a JSON file: the list of image URLs")
    cli.add_argument("--redis", default="none", help="a redis:// URL, or none: pace alone")
    cli.add_argument("--namespace", default="fleet")
    cli.add_argument(
        "--allow-volatile",
        action="store_true",
        help="accept a Redis without persistence (an input may be paid twice after a restart)",
    )
    cli.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    cli.add_argument("--submit-rate", default="20/10")
    cli.add_argument("--read-rate", default="10/1")
    cli.add_argument("--poll", default="2,1.5,15,900", help="initial,factor,max,timeout")
    cli.add_argument("--max-in-flight", type=int, default=32)
    cli.add_argument("--listen", type=int, default=0, help="serve callbacks on this port")
    cli.add_argument("--callback-url", default="")
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    """Run one worker: "ready", then (after a line on stdin) its report as one JSON line."""
    args = parser().parse_args(argv)
    images: list[str] = json.loads(Path(args.images).read_text(encoding="utf-8"))
    report = anyio.run(run, args, images, backend=args.backend)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
