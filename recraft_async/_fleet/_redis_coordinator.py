"""The fleet's coordinator on Redis (coredis, on anyio: asyncio and trio alike).

Shared: the submit window and the read budget (sliding windows, check-and-take in one
Lua script), a 429's pause, the claims on inputs (set-if-absent, with a lease a live
worker renews) and the callbacks (pub/sub). Faults: a submit never goes out unpaced;
when Redis does not answer within ``unavailable_timeout`` it fails with
``CoordinationUnavailableError``. Status reads of submitted tasks go on under this
process's own read pacer meanwhile: they cost nothing, and a task paid for must finish.
"""

from __future__ import annotations

import contextlib
import logging
import math
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import coredis
from coredis.exceptions import RedisError
from coredis.retry import NoRetryPolicy

from recraft_async._core._coordination import Budget, Claim, HintSink
from recraft_async._core._errors import CoordinationNotDurableError, CoordinationUnavailableError
from recraft_async._core._escape import printable
from recraft_async._core._pacer import Pacer
from recraft_async._core._policy import MAX_RETRY_AFTER, Rate
from recraft_async._core._webhooks import Seen

from . import _redis_scripts as scripts
from ._redis_memory import OwnSubmits, check_persistence, run_id
from ._turn import Turn

logger = logging.getLogger("recraft_async")

_OUTBOX_SIZE = 10_000  # pauses and callbacks waiting to be told to Redis; beyond: dropped
_FIRST_BACKOFF = 0.05
_MAX_BACKOFF = 1.0
# After Redis failed a read's slot, reads pace themselves alone this long before asking
# Redis again: a slow Redis must not add its timeout to every status read.
_AWAY = 1.0


class _Unavailable(Exception):  # noqa: N818 - internal: Redis did not answer in time
    """Redis refused the connection, timed out or failed the command."""


class RedisCoordinator:
    """Budgets, claims and callbacks shared through one Redis by every worker of a key."""

    dedups = True

    def __init__(
        self,
        url: str,
        *,
        namespace: str,
        submit_rate: Rate | None,
        read_rate: Rate | None,
        lease: float,
        remember: float,
        unavailable_timeout: float,
        command_timeout: float,
        allow_volatile: bool = False,
    ) -> None:
        self._redis: coredis.Redis[str] = coredis.Redis.from_url(
            url,
            decode_responses=True,
            connect_timeout=command_timeout,
            stream_timeout=command_timeout,
            retry_policy=NoRetryPolicy(),  # ours retries, within unavailable_timeout
        )
        self.prefix = f"recraft:{namespace}:"
        self._channel = self.prefix + "callbacks"
        self.lease = lease
        self.remember = remember
        self.unavailable_timeout = unavailable_timeout
        self.command_timeout = command_timeout
        # Marks this process's pending claims and its own callback messages.
        self.token = uuid.uuid4().hex
        self.submits: Budget = RedisBudget(self, "submits", submit_rate, fail_closed=True)
        self.reads: Budget = RedisBudget(self, "reads", read_rate, fail_closed=False)
        self.pending: set[str] = set()  # claim keys we hold while our submit is on its way
        self.allow_volatile = allow_volatile
        # The inputs we submitted (or attached to), asked once Redis has restarted: it may
        # have forgotten them, and an absent claim must not mean "never submitted".
        self.own = OwnSubmits(remember)
        self._run_id: str | None = None  # the Redis run we opened on
        self.restarted = False  # Redis restarted since we opened (its run id changed)
        self._scripts = {
            name: self._redis.register_script(text)
            for name, text in (
                ("take", scripts.TAKE),
                ("release", scripts.RELEASE),
                ("pause", scripts.PAUSE),
                ("claim", scripts.CLAIM),
                ("settle", scripts.SETTLE),
                ("refresh", scripts.REFRESH),
                ("forget", scripts.FORGET),
                ("accept", scripts.ACCEPT),
            )
        }
        send, receive = anyio.create_memory_object_stream[tuple[str, str, float]](_OUTBOX_SIZE)
        self._outbox, self._outbox_reader = send, receive
        self._stack: AsyncExitStack | None = None
        self._hint: HintSink = lambda _task_id: None  # wakes a local poll; set at open

    async def open(self, hint: HintSink) -> None:
        """Connect, subscribe to the fleet's callbacks, start the heartbeat and the outbox."""
        self._hint = hint
        stack = AsyncExitStack()
        await stack.enter_async_context(self._redis)
        group = await stack.enter_async_context(anyio.create_task_group())
        stack.callback(group.cancel_scope.cancel)  # our loops never end by themselves
        failure: BaseException | None = None
        try:
            with anyio.fail_after(self.unavailable_timeout):
                await group.start(self._listen, hint)
                await check_persistence(self._redis, allow_volatile=self.allow_volatile)
                self._run_id = await run_id(self._redis)
        except (TimeoutError, RedisError, OSError, CoordinationNotDurableError) as exc:
            failure = exc
        except BaseException:  # cancelled while connecting: leave nothing entered
            with anyio.CancelScope(shield=True):
                await stack.aclose()
            raise
        if failure is not None:
            # Closed before raising: through coredis's task group the error would come
            # out wrapped in an exception group.
            await stack.aclose()
            if isinstance(failure, CoordinationNotDurableError):
                raise failure
            raise CoordinationUnavailableError(
                f"Redis did not answer within {self.unavailable_timeout:g} s: {failure!r}"
            )
        group.start_soon(self._heartbeat)
        group.start_soon(self._deliver_outbox)
        self._stack = stack

    async def close(self) -> None:
        """Stop listening and disconnect."""
        stack, self._stack = self._stack, None
        if stack is not None:
            # Not shielded here: a shield's scope would sit inside the task groups entered
            # at open, which must be exited in the reverse order of their entry.
            await stack.aclose()

    async def claim(self, key: str) -> Claim:
        """Claim input ``key``: ours, or the task (or uncertainty) of whoever holds it."""
        claim_key = self.prefix + "claim:" + key
        mine = self.token_value
        asked = 0
        while True:
            held = str(await self.call("claim", [claim_key], [mine, _ms(self.lease)]))
            if held == "":
                self.pending.add(claim_key)
                remembered = self.own.get(claim_key)
                if remembered is not None and await self._redis_restarted():
                    # Absent because Redis forgot it, not because nobody submitted it.
                    logger.warning("fleet: Redis restarted and forgot an input we submitted")
                    await RedisClaim(self, claim_key).settle(remembered, "its task id")
                    held = remembered
                else:
                    return RedisClaim(self, claim_key)
            kind, _, value = held.partition(":")
            if kind == "task":
                self.own.record(claim_key, held)
                return RedisClaim(self, claim_key, task_id=value)
            if kind == "uncertain":
                return RedisClaim(self, claim_key, uncertain_elsewhere=True)
            # Pending: another worker submits it now. Its task id comes soon, or its lease
            # runs out if it died; asked again at a modest pace meanwhile.
            await anyio.sleep(min(0.02 * 2**asked, 0.5))
            asked = min(asked + 1, 5)

    async def _redis_restarted(self) -> bool:
        """Whether Redis restarted since we opened (then, from now on, always True).

        Asked after a claim came back absent: a restart before it changed the run id by
        then. Unknown (Redis did not answer) counts as restarted for this once.
        """
        if not self.restarted:
            try:
                with anyio.fail_after(self.command_timeout):
                    now = await run_id(self._redis)
            except (RedisError, OSError, TimeoutError):
                return True
            self.restarted = now != self._run_id
        return self.restarted

    def forward(self, task_id: str) -> None:
        """Tell every worker of the fleet about a callback for ``task_id``."""
        self._post("publish", task_id, 0.0)

    def accept_callback(self, task_id: str, seen: Seen) -> None:
        """Wake ``task_id`` here and in the fleet, unless another worker took this callback."""
        self._post("accept", f"{seen.digest}:{task_id}", seen.lifetime)

    async def call(
        self, name: str, keys: list[str], args: list[str | int], *, fail_closed: bool = True
    ) -> Any:
        """Run one script; retried until ``unavailable_timeout``, then the typed error.

        ``fail_closed=False`` gives up at the first failure (``_Unavailable``): the caller
        has a way on without Redis.
        """
        started = anyio.current_time()
        backoff = _FIRST_BACKOFF
        while True:
            try:
                return await self._once(name, keys, args)
            except _Unavailable as exc:  # noqa: PERF203 - a retry loop, on a fault
                if not fail_closed:
                    raise
                left = started + self.unavailable_timeout - anyio.current_time()
                if left <= 0:
                    raise CoordinationUnavailableError(
                        f"Redis did not answer within {self.unavailable_timeout:g} s"
                        f" ({exc}): nothing was submitted, to keep the account's limits"
                    ) from None
                await anyio.sleep(min(backoff, left))
                backoff = min(backoff * 2, _MAX_BACKOFF)

    async def _once(self, name: str, keys: list[str], args: list[str | int]) -> Any:
        try:
            with anyio.fail_after(self.command_timeout):
                return await self._scripts[name](keys=keys, args=args)
        except (RedisError, OSError, TimeoutError) as exc:
            raise _Unavailable(printable(str(exc) or type(exc).__name__)) from None

    def _post(self, kind: str, value: str, seconds: float) -> None:
        try:
            self._outbox.send_nowait((kind, value, seconds))
        except anyio.WouldBlock:
            logger.warning("fleet outbox full: a %s was not shared", kind)

    async def _deliver_outbox(self) -> None:
        """Tell Redis the pauses and callbacks in order, never holding a request up."""
        async for kind, value, seconds in self._outbox_reader:
            try:
                if kind == "pause":
                    life = _ms(seconds) + 1000
                    await self._once("pause", [value], [_us(seconds), life])
                elif kind == "accept":
                    await self._accept(value, seconds)
                else:
                    with anyio.fail_after(self.command_timeout):
                        await self._redis.publish(self._channel, f"{self.token}:{value}")
            except Exception as exc:  # noqa: BLE001 - it must outlive any fault
                logger.warning("fleet: a %s was not shared (Redis: %s)", kind, printable(exc))

    async def _accept(self, value: str, seconds: float) -> None:
        """Wake a verified callback's task, here and in the fleet, if it is the first."""
        digest, _, task_id = value.partition(":")
        try:
            first = int(
                await self._once("accept", [self.prefix + "seen:" + digest], [_ms(seconds)])
            )
        except _Unavailable:
            first = 1  # without Redis, fail open: a replay costs one status read at most
        if not first:
            logger.info("fleet: a callback another worker already took was dropped")
            return
        self._hint(task_id)
        self._post("publish", task_id, 0.0)

    async def _listen(
        self, hint: HintSink, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Wake the local poll of each task whose callback another worker received.

        Never raises once started: it runs in a task group around the client's whole
        life, where an error would cancel the user's code. Polls go on meanwhile.
        """
        ours = self.token + ":"
        started = False
        while True:
            try:
                async with self._redis.pubsub(
                    channels=[self._channel], ignore_subscribe_messages=True
                ) as messages:
                    if not started:
                        task_status.started()
                        started = True
                    async for message in messages:
                        data = message.get("data")
                        if isinstance(data, str) and not data.startswith(ours):
                            hint(data.partition(":")[2])
            except Exception as exc:  # noqa: PERF203 - it must outlive any fault
                if not started:
                    raise  # open() reports it
                logger.warning("fleet: not hearing other workers' callbacks (%s)", printable(exc))
                await anyio.sleep(_MAX_BACKOFF)

    async def _heartbeat(self) -> None:
        """Renew our pending claims' leases while we live."""
        while True:
            await anyio.sleep(self.lease / 3)
            if not self.pending:
                continue
            try:
                keys = sorted(self.pending)
                await self._once("refresh", keys, [self.token_value, _ms(self.lease)])
            except Exception as exc:  # noqa: BLE001 - it must outlive any fault
                logger.warning("fleet: claims not renewed (Redis: %s)", printable(exc))

    @property
    def token_value(self) -> str:
        """The value of our pending claims."""
        return "pending:" + self.token

    def post_pause(self, key: str, seconds: float) -> None:
        """Share a 429's pause with the fleet (in the background)."""
        self._post("pause", key, seconds)


class RedisClaim:
    """A claim on one input: ours to submit, or another worker's task (or uncertainty)."""

    def __init__(
        self,
        owner: RedisCoordinator,
        key: str,
        *,
        task_id: str | None = None,
        uncertain_elsewhere: bool = False,
    ) -> None:
        self._owner = owner
        self._key = key
        self.task_id = task_id
        self.uncertain_elsewhere = uncertain_elsewhere
        self._task = task_id  # the task this claim names: attached to, or ours once sent

    async def submitted(self, task_id: str) -> None:
        """Every worker given this input attaches to ``task_id`` from now on."""
        self._task = task_id
        self._owner.own.record(self._key, "task:" + task_id)
        await self.settle("task:" + task_id, "its task id")

    async def release(self) -> None:
        """Nothing was created: the next worker may submit it.

        Tried once: without Redis (the usual reason a submit was not sent) the claim's
        lease frees it instead, and the job's error is not held up by a second wait.
        """
        await self.settle("", "its release", retry=False)

    async def uncertain(self) -> None:
        """It may have landed: no worker resubmits it."""
        self._owner.own.record(self._key, "uncertain:" + self._owner.token)
        await self.settle("uncertain:" + self._owner.token, "its uncertainty")

    async def failed(self) -> None:
        """The task failed at the service: the next worker given this input submits anew."""
        if self._task is None:
            return
        self._owner.own.forget(self._key)
        try:
            with anyio.CancelScope(shield=True):
                await self._owner.call("forget", [self._key], ["task:" + self._task])
        except CoordinationUnavailableError:
            logger.warning("fleet: a failed task could not be forgotten; it expires instead")

    async def settle(self, value: str, what: str, *, retry: bool = True) -> None:
        """Set the claim to ``value`` (``what`` names it in a warning) if it is still ours."""
        owner = self._owner
        if self._key not in owner.pending:
            return  # not ours: attached to another's task, or settled already
        try:
            with anyio.CancelScope(shield=True):
                await owner.call(
                    "settle",
                    [self._key],
                    [owner.token_value, value, _ms(owner.remember)],
                    fail_closed=retry,
                )
        except (CoordinationUnavailableError, _Unavailable):
            # Its lease expires instead: another worker may then submit it again.
            logger.warning("fleet: a claim's outcome could not be shared (%s)", what)
        finally:
            owner.pending.discard(self._key)


class RedisBudget:
    """A sliding window every worker takes from atomically; paused by any worker's 429."""

    def __init__(
        self, owner: RedisCoordinator, name: str, rate: Rate | None, *, fail_closed: bool
    ) -> None:
        self._owner = owner
        self._rate = rate
        self._window = owner.prefix + name
        self._pause_key = self._window + ":pause"
        self._fail_closed = fail_closed
        self._turn = Turn()  # one local request asks Redis at a time, in priority order
        # Without Redis (reads only): this process's own pacing, as a client alone.
        self._local = Pacer(rate)
        self._waiting_until: float | None = None
        self._paused_until = -math.inf  # our own 429's pause, known before Redis has it
        self._away_until = -math.inf  # reads only: Redis failed, pace alone until then
        self._members = 0

    def pause(self, seconds: float) -> None:
        """Hold every worker's requests for ``seconds`` (a 429's Retry-After)."""
        seconds = min(max(seconds, 0.0), MAX_RETRY_AFTER)
        self._local.pause(seconds)
        self._paused_until = max(self._paused_until, anyio.current_time() + seconds)
        self._owner.post_pause(self._pause_key, seconds)

    def delay(self) -> float | None:
        """Seconds until this process's first waiting request may go; None when none waits."""
        if self._waiting_until is None:
            return self._local.delay()
        left = self._waiting_until - anyio.current_time()
        return left if left > 0 else None

    @asynccontextmanager
    async def slot(self, priority: float | None = None) -> AsyncIterator[None]:
        """Wait for room in the fleet's window, hold it for one request, then give it back."""
        if self._rate is None:
            async with self._local.slot(priority):
                yield
            return
        async with self._turn.hold(anyio.current_time() if priority is None else priority):
            member = await self._take()
        if member is None:  # Redis is away: reads go on, paced by this process alone
            async with self._local.slot(priority):
                yield
            return
        try:
            yield
        finally:
            await self._release(member)

    async def _take(self) -> str | None:
        """A slot of the fleet's window (its member), or None: Redis away, reads only."""
        rate = self._rate
        assert rate is not None  # noqa: S101 - unpaced budgets never ask
        self._members += 1
        member = f"{self._owner.token}:{self._members}"
        per, lease = _us(rate.per), _us(self._owner.lease)
        if anyio.current_time() < self._away_until:
            return None
        try:
            while True:
                await self._wait_local_pause()
                try:
                    took, wait = await self._owner.call(
                        "take",
                        [self._window, self._pause_key],
                        [rate.n, per, lease, member],
                        fail_closed=self._fail_closed,
                    )
                except _Unavailable:
                    self._away_until = anyio.current_time() + _AWAY
                    return None
                if int(took):
                    return member
                seconds = int(wait) / 1e6
                if seconds > rate.per:  # every slot is on the wire: an answer frees one
                    seconds = rate.per / rate.n
                self._waiting_until = anyio.current_time() + seconds
                await anyio.sleep(seconds)
        finally:
            self._waiting_until = None

    async def _wait_local_pause(self) -> None:
        left = self._paused_until - anyio.current_time()
        if left > 0:
            self._waiting_until = self._paused_until
            await anyio.sleep(left)

    async def _release(self, member: str) -> None:
        # Without Redis the slot's lease frees it instead: a little slower, never faster.
        with anyio.CancelScope(shield=True), contextlib.suppress(_Unavailable):
            await self._owner.call("release", [self._window], [member], fail_closed=False)


def _us(seconds: float) -> int:
    return math.ceil(seconds * 1_000_000)


def _ms(seconds: float) -> int:
    return max(math.ceil(seconds * 1000), 1)
