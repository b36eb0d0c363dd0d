"""Run the emulator as its own process (for benchmarks); prints its base URL when ready.

For example (one line)::

    python -m recraft_async.testing --port 0 --rate 20/10 --read-rate 10/1 --time-scale 0.1
        --duration lognormal:median=20,sigma=0.5 --fault status=http:500@0.05
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import anyio

from recraft_async._core._policy import Rate

from ._callbacks import CALLBACK_SHAPES
from ._duration import Duration
from ._emulator import KieEmulator
from ._faults import Fault, FaultPlan, Target
from ._images import sample_images
from ._replay import Replay
from ._server import loopback_socket, run_server, url_of
from ._service import DEFAULT_NOT_READY_FOR


def _rate(text: str) -> Rate | None:
    if text.lower() in {"none", "off", "0"}:
        return None
    count, _, per = text.partition("/")
    return Rate(int(count), per=float(per or 1))


def _fault(plan: FaultPlan, text: str) -> None:
    # TARGET=SPEC@PROBABILITY, or TARGET=SPEC*COUNT for the next COUNT events.
    target, _, rest = text.partition("=")
    if "*" in rest:
        spec, _, count = rest.partition("*")
        plan.next(Target(target), *[Fault.parse(spec)] * int(count))
    else:
        spec, _, probability = rest.partition("@")
        plan.chance(Target(target), Fault.parse(spec), float(probability or 1))


MODULE_PROG = "python -m recraft_async.testing"


def parser(prog: str = MODULE_PROG) -> argparse.ArgumentParser:
    """The command line's options; ``prog`` is how the command was invoked, for ``--help``."""
    cli = argparse.ArgumentParser(
        prog=prog,
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cli.add_argument("--host", default="127.0.0.1", help="a loopback address")
    cli.add_argument("--port", type=int, default=0, help="0 picks a free port")
    cli.add_argument("--api-key", default="emulator-key")
    cli.add_argument("--credits", type=float, default=100_000.0)
    cli.add_argument(
        "--rate", type=_rate, default=Rate(20, per=10.0), help="submits: N/SECONDS or none"
    )
    cli.add_argument(
        "--read-rate", type=_rate, default=Rate(10, per=1.0), help="status reads: N/SECONDS or none"
    )
    cli.add_argument("--time-scale", type=float, default=0.01)
    cli.add_argument(
        "--duration",
        type=Duration.parse,
        default=Duration.lognormal(median=20.0, sigma=0.5),
        help="fixed:S, uniform:LO,HI or lognormal:median=M,sigma=S (seconds, before scaling)",
    )
    cli.add_argument(
        "--latency",
        type=Duration.parse,
        default=None,
        help="delay of every answer, like --duration but in real (unscaled) seconds",
    )
    cli.add_argument(
        "--result-url-lifetime",
        type=float,
        default=None,
        metavar="SECONDS",
        help="result URLs answer 403 this long after their task ended (default: never)",
    )
    cli.add_argument(
        "--download-link-lifetime",
        type=float,
        default=1200.0,
        metavar="SECONDS",
        help="how long a link of /api/v1/common/download-url answers (default 1200)",
    )
    cli.add_argument(
        "--replay",
        type=Replay.load,
        default=None,
        metavar="TRACE",
        help="act out a `recraft-async doctor --trace` file: its task times and answer shapes",
    )
    cli.add_argument(
        "--not-ready",
        type=float,
        default=DEFAULT_NOT_READY_FOR,
        metavar="SECONDS",
        help="a new task's recordInfo answers 422 'recordInfo is null' this long (0: never)",
    )
    cli.add_argument(
        "--json-objects",
        action="store_true",
        help="records carry param and resultJson as JSON objects, not the documented strings",
    )
    cli.add_argument("--webhook-key", default=None)
    cli.add_argument("--callback-shape", choices=CALLBACK_SHAPES, default="both")
    cli.add_argument("--seed", type=int, default=None)
    cli.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="TARGET=SPEC@P",
        help="e.g. submit=http:503@0.05, status=drop@0.01, task=fail*3, result=http:403*1"
        " (repeatable)",
    )
    cli.add_argument(
        "--samples", action="store_true", help="store the sample images; their URLs go to stderr"
    )
    return cli


def main(argv: Sequence[str] | None = None, *, prog: str = MODULE_PROG) -> int:
    """Serve until interrupted; the first line on stdout is the base URL."""
    args = parser(prog).parse_args(argv)
    plan = FaultPlan(args.seed)
    for text in args.fault:
        _fault(plan, text)
    emulator = KieEmulator(
        api_key=args.api_key,
        credits=args.credits,
        rate=args.rate,
        read_rate=args.read_rate,
        callback_shape=args.callback_shape,
        webhook_key=args.webhook_key,
        duration=args.duration,
        time_scale=args.time_scale,
        faults=plan,
        seed=args.seed,
        latency=args.latency,
        result_url_lifetime=args.result_url_lifetime,
        download_link_lifetime=args.download_link_lifetime,
        replay=args.replay,
        not_ready_for=args.not_ready,
        json_objects=args.json_objects,
    )
    sock = loopback_socket(args.host, args.port)
    emulator.base_url = url_of(sock)
    if args.samples:
        for name, data in sample_images():
            print(emulator.add_image(name, data), file=sys.stderr)  # noqa: T201

    def ready(_server: object) -> None:
        print(emulator.base_url, flush=True)  # noqa: T201 - the caller reads it

    anyio.run(run_server, emulator, sock, ready, backend="asyncio")
    return 0


if __name__ == "__main__":
    sys.exit(main())
