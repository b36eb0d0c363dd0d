"""One benchmark contender per process: drives N jobs and prints what it measured as JSON.

Run by ``benchmarks/run.py``; each contender is its own process so that its CPU time and
peak RSS are its own. The emulator runs in another process, so its work is not counted.

    python benchmarks/contenders.py recraft --base-url URL --image URL --n 60 ...
    python benchmarks/contenders.py fixed --interval 0.05 ...
    python benchmarks/contenders.py queued-recraft --n 100000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import inspect
import json
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import recraft_async as ra

API_KEY = "emulator-key"
# KIE's documented jobs API, which every contender speaks (the client's default dialect).
SUBMIT = "/api/v1/jobs/createTask"
STATUS = "/api/v1/jobs/recordInfo"
MODEL = "recraft/crisp-upscale"
FINAL_STATES = frozenset({"success", "fail"})


def _peak_rss_kb() -> int:
    # Linux reports ru_maxrss in kilobytes.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _current_rss_kb() -> int:
    with Path("/proc/self/statm").open() as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() // 1024


async def _emulator_stats(base_url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base_url) as http:
        stats: dict[str, Any] = (await http.get("/_emulator/stats")).json()
    return stats


async def _batch(
    base_url: str,
    started: float,
    cpu0: float,
    learnt: dict[str, float],
    errors: int,
    arrived: dict[str, float] | None = None,
) -> dict[str, Any]:
    """One batch's measurements, and the emulator's counters right after it."""
    cpu = time.process_time() - cpu0
    return {
        "started": started,
        "cpu_seconds": cpu,
        "learnt": learnt,  # task id -> time.time() when the client learnt the result
        "arrived": arrived or {},  # task id -> time.time() when its callback arrived
        "errors": errors,
        "stats_after": await _emulator_stats(base_url),
    }


class _Hooks:
    """A minimal HTTP/1.1 keep-alive server on loopback: each POST goes to handle_callback.

    Raw asyncio streams rather than a web framework: the receiver's CPU is counted as the
    contender's, and an application's own server would cost whatever it costs anyway.
    """

    def __init__(self) -> None:
        self.client: ra.AsyncRecraft | None = None
        self.arrived: dict[str, float] = {}
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/kie"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                now = time.time()
                task_id = json.loads(body).get("taskId")
                if isinstance(task_id, str):
                    self.arrived.setdefault(task_id, now)
                assert self.client is not None  # noqa: S101 - opened before any submit
                self.client.handle_callback(body)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


# -- 1. recraft-async ---------------------------------------------------------------------


# The prior the default PollPolicy had before issue 18 (tasks of median 20 s, sigma 0.6):
# it made a fresh client's first read wait for a likely finish. --old-prior puts it back,
# to show what it gave (and cost) side by side with today's default, which has none.
OLD_DEFAULT_PRIOR = ra.ProcessingTime(20.0, sigma=0.6)


def _scaled_poll(args: argparse.Namespace) -> ra.PollPolicy:
    """The client's default PollPolicy with every duration scaled: its prior's too."""
    scale = args.time_scale
    prior = inspect.signature(ra.AsyncRecraft).parameters["poll"].default.prior
    if args.old_prior:
        prior = OLD_DEFAULT_PRIOR
    if prior is not None:
        prior = attrs.evolve(prior, median=prior.median * scale)
    return ra.PollPolicy(
        initial=2.0 * scale,
        factor=1.5,
        max_interval=15.0 * scale,
        timeout=args.timeout * scale,
        reads_per_job=args.reads_per_job,
        prior=prior,
    )


def _own_http(args: argparse.Namespace) -> httpx.AsyncClient | None:
    """With ``--pool``, an httpx client of that pool size instead of the library's own."""
    if not args.pool:
        return None
    limits = httpx.Limits(
        max_connections=args.pool, max_keepalive_connections=args.keepalive or args.pool
    )
    return httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(30.0, pool=None))


async def run_recraft(args: argparse.Namespace) -> dict[str, Any]:
    """Drive N upscales through AsyncRecraft, noting when each result became known.

    With ``--warm-n`` a second batch follows: on the same client (what a long-lived
    client, a web app's, does once it has learnt the service's processing times), or with
    ``--restart`` on a new client started warm from the first one's ``state_file`` (what a
    new process does). A batch's CPU time includes its client's set-up.
    """
    hooks = _Hooks() if args.callbacks else None
    callback_url = await hooks.start() if hooks is not None else None
    batches: list[dict[str, Any]] = []
    http = _own_http(args)
    with tempfile.TemporaryDirectory() as folder:
        state = Path(folder) / "poll-state.json" if args.restart else None
        clients = 2 if args.restart else 1
        sizes = [(args.n, args.warm_n)] if clients == 1 else [(args.n,), (args.warm_n,)]
        for batch_sizes in sizes:
            opening = time.process_time()
            async with _client(args, http, state) as client:
                # The client's set-up (in a fresh process mostly the first import of
                # httpcore, which httpx defers) is reported apart from the batch.
                cpu0 = time.process_time()
                setup = cpu0 - opening
                if hooks is not None:
                    hooks.client = client
                for n in batch_sizes:
                    if not n:
                        continue
                    if batches:
                        # Let the first batch's submits leave the rate window: the second
                        # batch then starts as the first did, and its makespan compares.
                        await asyncio.sleep(args.rate_per)
                        if clients == 1:
                            cpu0 = time.process_time()
                    batches.append(await _drive(args, client, n, cpu0, hooks, callback_url))
                    batches[-1]["setup_cpu_seconds"] = setup
                    setup = 0.0
    if http is not None:
        await http.aclose()
    if hooks is not None and hooks.server is not None:
        hooks.server.close()
    return {"batches": batches, "peak_rss_kb": _peak_rss_kb()}


def _client(
    args: argparse.Namespace, http: httpx.AsyncClient | None, state: Path | None
) -> ra.AsyncRecraft:
    return ra.AsyncRecraft(
        api_key=API_KEY,
        base_url=args.base_url,
        upload_base_url=args.base_url,
        max_in_flight=args.max_in_flight,
        submit_rate=ra.Rate(args.rate_n, per=args.rate_per),
        # KIE's 10 reads per second, on the scaled clock the processing times run on.
        read_rate=None if args.no_read_budget else ra.Rate(10, per=1.0 * args.time_scale),
        poll=_scaled_poll(args),
        http_client=http,
        state_file=state,
    )


async def _drive(
    args: argparse.Namespace,
    client: ra.AsyncRecraft,
    n: int,
    cpu0: float,
    hooks: _Hooks | None,
    callback_url: str | None,
) -> dict[str, Any]:
    """One batch of ``n`` upscales, to the last result; its measurements."""
    learnt: dict[str, float] = {}
    errors = 0
    started = time.time()
    jobs = [client.upscale(args.image, callback_url=callback_url) for _ in range(n)]
    async for job in client.as_completed(jobs):
        now = time.time()
        if job.exception() is None and job.task_id is not None:
            learnt[job.task_id] = now
        else:
            errors += 1
    arrived = dict(hooks.arrived) if hooks is not None else None
    if hooks is not None:
        hooks.arrived.clear()
    return await _batch(args.base_url, started, cpu0, learnt, errors, arrived)


# -- 2. and 3. plain httpx, the way KIE's examples do it ----------------------------------


async def _naive_job(
    http: httpx.AsyncClient,
    image: str,
    interval: float,
    retry_sleep: float,
    learnt: dict[str, float],
) -> None:
    """Submit (sleeping and retrying on 429), then poll at a fixed interval until done."""
    while True:
        body = {"model": MODEL, "input": {"image": image}}
        answer = (await http.post(SUBMIT, json=body)).json()
        if answer["code"] == 429:
            await asyncio.sleep(retry_sleep)
            continue
        if answer["code"] != 200:
            raise RuntimeError(f"submit refused: {answer}")
        task_id: str = answer["data"]["taskId"]
        break
    while True:
        await asyncio.sleep(interval)
        answer = (await http.get(STATUS, params={"taskId": task_id})).json()
        if answer["code"] != 200:  # a 429 on a read: try again at the next interval
            continue
        if answer["data"]["state"] in FINAL_STATES:
            learnt[task_id] = time.time()
            return


async def run_fixed(args: argparse.Namespace) -> dict[str, Any]:
    """asyncio.gather over one coroutine per job, polling every ``interval`` seconds."""
    learnt: dict[str, float] = {}
    async with httpx.AsyncClient(
        base_url=args.base_url,
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=30.0,
    ) as http:
        # Counted from here, as recraft-async's batches: the client's set-up apart.
        cpu0, started = time.process_time(), time.time()
        outcomes = await asyncio.gather(
            *(
                _naive_job(http, args.image, args.interval, args.retry_sleep, learnt)
                for _ in range(args.n)
            ),
            return_exceptions=True,
        )
    errors = sum(isinstance(outcome, BaseException) for outcome in outcomes)
    batch = await _batch(args.base_url, started, cpu0, learnt, errors)
    return {"batches": [batch], "peak_rss_kb": _peak_rss_kb()}


# -- what one plain httpx request costs here ----------------------------------------------


async def httpx_floor(args: argparse.Namespace) -> dict[str, Any]:
    """CPU per status read for a bare httpx client, one request at a time (the floor)."""
    async with httpx.AsyncClient(
        base_url=args.base_url, headers={"Authorization": f"Bearer {API_KEY}"}
    ) as http:
        await http.get(STATUS, params={"taskId": "warm-up"})
        cpu0 = time.process_time()
        for _ in range(args.n):
            (await http.get(STATUS, params={"taskId": "floor"})).json()
        cpu = time.process_time() - cpu0
    return {"n": args.n, "cpu_ms_per_request": cpu * 1000 / args.n}


# -- the memory of 100,000 queued jobs ----------------------------------------------------


class _Silent:
    """A service that answers nothing until told to refuse: every job stays queued."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def __call__(self, _request: httpx.Request) -> httpx.Response:
        await self.release.wait()
        return httpx.Response(503, json={"code": 503, "msg": "stopping", "data": None})


async def queued_recraft(args: argparse.Namespace) -> dict[str, Any]:
    """RSS growth of N jobs queued behind one in-flight submit that never returns."""
    service = _Silent()
    http = httpx.AsyncClient(transport=httpx.MockTransport(service))
    urls = [f"{args.image}?n={i}" for i in range(args.n)]  # distinct inputs, made up front
    baseline = 0
    try:
        async with ra.AsyncRecraft(
            api_key=API_KEY,
            base_url="http://127.0.0.1:9",
            max_in_flight=1,
            http_client=http,
        ) as client:
            gc.collect()
            baseline = _current_rss_kb()
            jobs = [client.upscale(url) for url in urls]
            await asyncio.sleep(0.2)  # the dispatcher takes the first job
            gc.collect()
            grown = _current_rss_kb() - baseline
            queued = sum(job.status is ra.JobStatus.QUEUED for job in jobs)
            service.release.set()  # the one submit on the wire may end now
            _stop()
    except _Stop:
        pass
    finally:
        await http.aclose()
    return {"n": args.n, "queued": queued, "rss_growth_kb": grown}


async def queued_naive(args: argparse.Namespace) -> dict[str, Any]:
    """RSS growth of N gathered per-job coroutines, all waiting before their submit."""
    urls = [f"{args.image}?n={i}" for i in range(args.n)]
    gate = asyncio.Event()

    async def job(url: str) -> str:
        await gate.wait()
        return url

    gc.collect()
    baseline = _current_rss_kb()
    gathered = asyncio.gather(*(job(url) for url in urls))
    await asyncio.sleep(0.2)  # every task starts and parks at the gate
    gc.collect()
    grown = _current_rss_kb() - baseline
    gate.set()
    await gathered
    return {"n": args.n, "queued": args.n, "rss_growth_kb": grown}


class _Stop(Exception):  # noqa: N818 - a signal, not an error
    """Leaves ``async with`` by an exception: the client stops its jobs at once."""


def _stop() -> None:
    raise _Stop


def parser() -> argparse.ArgumentParser:
    """The contender's options."""
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument(
        "kind", choices=["recraft", "fixed", "httpx-floor", "queued-recraft", "queued-naive"]
    )
    cli.add_argument("--base-url", default="http://127.0.0.1:9")
    cli.add_argument("--image", default="http://127.0.0.1:9/_emulator/files/images/a.png")
    cli.add_argument("--n", type=int, default=60)
    cli.add_argument("--warm-n", type=int, default=0, help="recraft: a second batch")
    cli.add_argument("--time-scale", type=float, default=0.1)
    cli.add_argument("--rate-n", type=int, default=20)
    cli.add_argument("--rate-per", type=float, default=10.0)
    cli.add_argument("--max-in-flight", type=int, default=64)
    cli.add_argument("--reads-per-job", type=float, default=3.0)
    cli.add_argument("--timeout", type=float, default=900.0, help="recraft: unscaled seconds")
    cli.add_argument("--restart", action="store_true", help="recraft: warm batch, new client")
    cli.add_argument(
        "--old-prior", action="store_true", help="recraft: the default's prior before issue 18"
    )
    cli.add_argument("--callbacks", action="store_true", help="recraft: callback_url + receiver")
    cli.add_argument("--no-read-budget", action="store_true", help="recraft: read_rate=None")
    cli.add_argument("--pool", type=int, default=0, help="recraft: own httpx pool of this size")
    cli.add_argument("--keepalive", type=int, default=0, help="recraft: with --pool, idle kept")
    cli.add_argument("--interval", type=float, default=0.3, help="real seconds")
    cli.add_argument("--retry-sleep", type=float, default=1.0, help="real seconds after a 429")
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    """Run one contender and print its measurements as one JSON line."""
    args = parser().parse_args(argv)
    runners = {
        "recraft": run_recraft,
        "fixed": run_fixed,
        "httpx-floor": httpx_floor,
        "queued-recraft": queued_recraft,
        "queued-naive": queued_naive,
    }
    result = asyncio.run(runners[args.kind](args))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
