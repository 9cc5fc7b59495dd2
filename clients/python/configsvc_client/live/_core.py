"""The routing core: one call's tries over the endpoints a router plans, shared by
`LiveTransport`, `LiveSyncTransport` and `LiveHTTPClient`.

Guarantees of `Dispatcher.send`:
- the document is read once, at the call's start; every try keeps those settings;
- each endpoint gets up to `retry.attempts` tries, with backoff, after a connection
  error, a timeout, a broken body, or a status in its retry policy; then the next
  endpoint (a group's other members, the fallbacks), with no wait between endpoints;
- an endpoint whose breaker is open is skipped (not tried); with every one skipped the
  call raises `CircuitOpen`;
- with `timeout.total` (of the first endpoint, or of its task class) no try starts whose
  read timeout (`first_token` for streams) does not fit in what remains, and every try's
  limits are cut to what remains; a streamed body is cut at the deadline too;
- a streamed answer is handed on once its first body byte has arrived: until then a
  late or broken stream moves on to the next try like any failure; after it, a pause
  longer than `idle` or a break raises (`LiveTimeout`, `StreamInterrupted`);
- the outcome is the last try's: a response (e.g. the last 503) is returned, an error
  is raised with a note listing every failed try.
"""

from __future__ import annotations

import asyncio
import logging
import random as _random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

import httpx
from configsvc_schemas import Retry

from configsvc_client.live._errors import CircuitOpen, LiveTimeout, StreamInterrupted
from configsvc_client.live._pools import Pool, Pools
from configsvc_client.live._retry import backoff_bound, is_retryable_status, parse_retry_after
from configsvc_client.live._router import Health, LiveRouter, Settings, Target
from configsvc_client.live._streams import SUCCESS, BodyMeter, Exchange, RelayStream
from configsvc_client.live._timeouts import TryLimits, try_limits, wait_needed

log = logging.getLogger("configsvc_client.live")

ENDPOINT_EXTENSION = "configsvc_endpoint"
"""Key in `response.extensions` naming the endpoint that answered."""

ATTEMPTS_EXTENSION = "configsvc_attempts"
"""Key in `response.extensions` counting the tries made, over all endpoints."""

RETRYABLE_ERRORS: tuple[type[Exception], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    StreamInterrupted,
)
"""Transport errors worth another try: timeouts, refused or reset connections, a peer
that closed before answering, a body that broke off before it reached the caller."""

Sleep = Callable[[float], Awaitable[None]]
Build = Callable[[Target, dict[str, float | None]], httpx.Request]
"""Builds the request of one try for an endpoint, given httpx's timeout extension."""


class Call(NamedTuple):
    """What one call asks for, fixed at its start."""

    build: Build
    streamed: bool
    """The request asked for a stream (`"stream": true`)."""
    task: str | None = None
    caller: Mapping[str, float | None] | None = None
    """The caller's own per-request timeouts, which narrow the document's."""
    endpoint: str | None = None
    fallbacks: bool = True


@dataclass(frozen=True, slots=True)
class Deadline:
    """The end of a call with `timeout.total`: `at` in seconds of the router's clock."""

    at: float
    seconds: float


class _Progress:
    """What a call has done so far."""

    __slots__ = ("deadline_note", "failures", "last", "skipped", "tries")

    def __init__(self) -> None:
        self.tries = 0
        self.failures: list[str] = []
        self.last: httpx.Response | Exception | None = None
        self.skipped: dict[str, float] = {}
        self.deadline_note: str | None = None


def failure_cause(exc: Exception) -> str:
    """The cause a failed try is counted under."""
    if isinstance(exc, LiveTimeout):
        return exc.limit
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return "connect"
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, StreamInterrupted):
        return "interrupted"
    return "network"


class Dispatcher:
    """Runs calls: plans them with `router`, sends each try through `pools`.

    `sleep` and `random` shape the backoff; `clock` (wall-clock seconds) reads
    `Retry-After` dates. Used from one event loop (the router may be shared).
    """

    def __init__(
        self,
        router: LiveRouter,
        pools: Pools,
        *,
        sleep: Sleep = asyncio.sleep,
        random: Callable[[], float] = _random.random,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.router = router
        self.pools = pools
        self._sleep = sleep
        self._random = random
        self._clock = clock

    async def send(self, call: Call) -> httpx.Response:
        """One call: tries, retries and fallbacks; see the module's guarantees."""
        router = self.router
        snapshot = router.snapshot()
        if self.pools.changed(snapshot.base_urls):
            await self.pools.keep(snapshot.base_urls)
        progress = _Progress()
        deadline: Deadline | None = None
        first = True
        for target in router.plan(snapshot, call.endpoint, fallbacks=call.fallbacks):
            settings = snapshot.settings(target.name, call.task)
            if first:
                first = False
                total = settings.timeout.total
                if total is not None:
                    deadline = Deadline(router.monotonic() + total, total)
            health = snapshot.health[target.name]
            response = await self._endpoint(call, target, settings, health, deadline, progress)
            if response is not None:
                return response
        return self._outcome(progress)

    async def _endpoint(
        self,
        call: Call,
        target: Target,
        settings: Settings,
        health: Health,
        deadline: Deadline | None,
        progress: _Progress,
    ) -> httpx.Response | None:
        """The tries of one endpoint: the final response, or None to move on."""
        router = self.router
        retry = settings.retry
        key = (call.task, call.streamed)
        learnt = router.adaptive_read(health, target.endpoint, key)
        need = wait_needed(settings.timeout, streamed=call.streamed, adaptive_read=learnt)
        for attempt in range(1, retry.attempts + 1):
            remaining: float | None = None
            if deadline is not None:
                remaining = deadline.at - router.monotonic()
                if progress.tries and need > remaining:
                    progress.deadline_note = (
                        f"timeout.total left {max(0.0, remaining):.2f}s, less than the "
                        f"{need:g}s a try of {target.name!r} may need"
                    )
                    return None
            if not router.admit(health):
                assert health.breaker is not None
                progress.skipped[target.name] = health.breaker.retry_in(router.monotonic())
                return None
            limits = try_limits(
                settings.timeout,
                streamed=call.streamed,
                adaptive_read=learnt,
                caller=call.caller,
                remaining=remaining,
            )
            progress.tries += 1
            pool = self.pools.acquire(target.endpoint.base_url)
            started = router.monotonic()
            try:
                response = await self._try(call, target, pool, limits, deadline, health)
            except RETRYABLE_ERRORS as exc:
                await self.pools.release(pool)
                waited = router.monotonic() - started if _read_wait(exc) else None
                router.failed(health, target.endpoint, key, failure_cause(exc), waited=waited)
                progress.failures.append(f"{target.name} try {attempt}: {exc!r}")
                progress.last = exc
                delay: float | None = self._backoff(retry, attempt)
            except BaseException:
                router.released(health)
                await self.pools.release(pool)
                raise
            else:
                status = response.status_code
                if not is_retryable_status(status, settings.on_status):
                    latency = router.monotonic() - started if status in SUCCESS else None
                    router.succeeded(health, target.endpoint, key, latency)
                    return self._finish(response, target, progress)
                router.failed(health, target.endpoint, key, f"status_{status}")
                progress.failures.append(f"{target.name} try {attempt}: {status}")
                progress.last = self._finish(response, target, progress)
                delay = self._delay_after(response, retry, attempt)
            if attempt == retry.attempts or delay is None:
                break
            if deadline is not None and delay + need > deadline.at - router.monotonic():
                progress.deadline_note = (
                    f"timeout.total leaves no room for another try of {target.name!r}"
                )
                break
            log.info(
                "endpoint %r failed (%s); retrying in %.2fs",
                target.name,
                progress.failures[-1],
                delay,
            )
            await self._sleep(delay)
        log.warning(
            "endpoint %r failed (%s); trying the next fallback",
            target.name,
            progress.failures[-1],
        )
        return None

    async def _try(
        self,
        call: Call,
        target: Target,
        pool: Pool,
        limits: TryLimits,
        deadline: Deadline | None,
        health: Health,
    ) -> httpx.Response:
        """One try: the answer with its body read, or a stream past its first byte.

        The pool is released here for a body read whole, by the stream's close otherwise.
        """
        router = self.router
        monotonic = router.monotonic
        request = call.build(target, limits.extension())
        meter = BodyMeter(target.name, request)
        started = monotonic()
        limit, seconds = "first_token", limits.first_byte
        wait: float | None = limits.first_byte if call.streamed else None
        if deadline is not None:
            left = deadline.at - started
            if wait is None or left < wait:
                limit, seconds, wait = "total", deadline.seconds, left
        exchange = Exchange(pool.transport, request, meter, call.streamed)
        try:
            if wait is None:
                await exchange.run(None, limits.first_byte, started, monotonic)
            else:
                async with asyncio.timeout(wait) as timer:
                    await exchange.run(timer, limits.first_byte, started, monotonic)
        except TimeoutError:
            if exchange.stream is not None:
                await exchange.stream.aclose()
            if exchange.first_byte_limit:
                limit, seconds = "first_token", limits.first_byte
            raise meter.timed_out(limit, seconds) from None
        except BaseException:
            if exchange.stream is not None:
                await exchange.stream.aclose()
            raise
        response = exchange.response
        assert response is not None
        if exchange.body is not None:
            if self.pools.done(pool):
                await pool.transport.aclose()
            response.stream = httpx.ByteStream(exchange.body)
            return response
        stream, iterator, chunk = exchange.stream, exchange.iterator, exchange.first
        assert stream is not None and iterator is not None

        endpoint, key = target.endpoint, (call.task, call.streamed)

        def failed(cause: str) -> None:
            router.failed(health, endpoint, key, cause, counted=False)

        response.stream = RelayStream(
            chunk,
            iterator,
            stream,
            meter,
            gap=limits.gap,
            deadline=None if deadline is None else (deadline.at, deadline.seconds),
            monotonic=monotonic,
            on_failure=failed,
            on_close=lambda: self.pools.release(pool),
        )
        return response

    def _finish(
        self, response: httpx.Response, target: Target, progress: _Progress
    ) -> httpx.Response:
        extensions = response.extensions
        if not isinstance(extensions, dict):
            extensions = response.extensions = dict(extensions)
        extensions[ENDPOINT_EXTENSION] = target.name
        extensions[ATTEMPTS_EXTENSION] = progress.tries
        return response

    def _outcome(self, progress: _Progress) -> httpx.Response:
        """The last try's outcome, once no try is left."""
        last = progress.last
        if isinstance(last, httpx.Response):
            return last
        if isinstance(last, Exception):
            notes = "configsvc tries: " + "; ".join(progress.failures)
            if progress.deadline_note:
                notes += f" ({progress.deadline_note})"
            if progress.skipped:
                notes += f"; skipped (breaker open): {', '.join(progress.skipped)}"
            last.add_note(notes)
            raise last
        raise CircuitOpen(progress.skipped)

    def _backoff(self, retry: Retry, attempt: int) -> float:
        bound = backoff_bound(attempt, retry.backoff_initial, retry.backoff_max)
        return self._random() * bound if retry.jitter else bound

    def _delay_after(self, response: httpx.Response, retry: Retry, attempt: int) -> float | None:
        """The wait before the next try; None when `Retry-After` asks for longer than
        `backoff_max` (then the next endpoint is tried at once)."""
        wait = parse_retry_after(response.headers.get("Retry-After"), self._clock())
        if wait is None:
            return self._backoff(retry, attempt)
        if wait > retry.backoff_max:
            return None
        return wait


def _read_wait(exc: Exception) -> bool:
    """Whether the failure was a wait for the answer that ran out (a latency sample's
    lower bound, which lets an adaptive timeout grow back)."""
    if isinstance(exc, LiveTimeout):
        return exc.limit == "first_token"
    return isinstance(exc, httpx.ReadTimeout)
