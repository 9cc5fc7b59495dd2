"""LiveRateLimiter: token buckets that follow one limit of a live `RateLimits` document."""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from configsvc_schemas import Limit, RateLimits

from configsvc_client.live._types import Fixed, LiveValue

DEFAULT_RECHECK_INTERVAL = 1.0
"""Longest a waiting `acquire` sleeps before re-reading the limit (so a change that
speeds it up is seen within this long)."""

DEFAULT_SWEEP_INTERVAL = 30.0
"""How often buckets that are full and idle (the same as new ones) are forgotten."""

SECONDS_PER_MINUTE = 60.0

Key = str | None
"""A bucket key, e.g. the caller's API key id; None is the one shared bucket."""


@dataclass(eq=False, slots=True)
class _Waiter:
    tokens: int
    turn: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(eq=False, slots=True)
class _Bucket:
    requests: float
    """Requests available; below 0 never (each request costs 1 and burst >= 1)."""
    tokens: float | None
    """Model tokens available (None while the limit has no `tokens_per_minute`); may be
    negative after a request larger than the whole bucket."""
    updated: float
    waiters: collections.deque[_Waiter] = field(default_factory=collections.deque)


def _token_capacity(limit: Limit) -> float | None:
    return None if limit.tokens_per_minute is None else float(limit.tokens_per_minute)


class LiveRateLimiter:
    """Rate limiting per key by the limit `name` of a live `RateLimits` document.

    Each key has a token bucket of `burst` requests refilled at the limit's rate
    (`requests_per_second` or `requests_per_minute`); with `tokens_per_minute`, a
    second bucket of that many model tokens, refilled over a minute, is charged by
    `tokens`. A request needs one request and `tokens` model tokens (or, for a request
    bigger than the whole token bucket, a full one: it then leaves a debt, so it is
    slowed down, never refused forever).

    The limit is read on every call. When it changes, each bucket keeps its level,
    clamped to the new size: a raised burst gives no free burst and a lowered one
    locks nobody out. New keys start with a full bucket. When the document or the
    limit is absent, `default` applies (None: no limit).

    Memory stays bounded: a bucket that is full and has no waiter is the same as a
    new one, so it is forgotten (every `sweep_interval` seconds).

    `acquire` waits first-come first-served per key and may be cancelled; a waiter
    re-reads the limit at least every `recheck_interval` seconds. `try_acquire` never
    waits and never overtakes a waiter. Use the async methods from one event loop;
    `try_acquire` and `wait_time` may also be called from other threads.
    """

    def __init__(
        self,
        limits: LiveValue[RateLimits] | RateLimits,
        name: str,
        *,
        default: Limit | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        recheck_interval: float = DEFAULT_RECHECK_INTERVAL,
        sweep_interval: float = DEFAULT_SWEEP_INTERVAL,
    ) -> None:
        if recheck_interval <= 0 or sweep_interval <= 0:
            raise ValueError("recheck_interval and sweep_interval must be > 0")
        self._limits: LiveValue[RateLimits] = (
            Fixed(limits) if isinstance(limits, RateLimits) else limits
        )
        self.name = name
        self._default = default
        self._clock = clock
        self._sleep = sleep
        self._recheck = recheck_interval
        self._sweep_interval = sweep_interval
        self._buckets: dict[Key, _Bucket] = {}
        self._lock = threading.Lock()
        self._last_sweep = clock()

    @property
    def limit(self) -> Limit | None:
        """The limit in force now: the document's `name`, else `default` (None: none)."""
        document = self._limits.value
        if document is not None and self.name in document.limits:
            return document.limits[self.name]
        return self._default

    @property
    def tracked_keys(self) -> int:
        """How many keys have a bucket in memory (idle, full ones are forgotten)."""
        return len(self._buckets)

    def try_acquire(self, key: Key = None, tokens: int = 1) -> bool:
        """Take one request (and `tokens` model tokens) if available now and no one
        is waiting for this key; True when taken."""
        _check_tokens(tokens)
        with self._lock:
            limit = self.limit
            if limit is None:
                return True
            bucket = self._bucket(key, limit)
            if bucket.waiters:
                return False
            return self._take(bucket, limit, tokens) is None

    def wait_time(self, key: Key = None, tokens: int = 1) -> float:
        """Seconds until `try_acquire(key, tokens)` could succeed at the current rate
        (0.0: now), not counting waiters; e.g. for a `Retry-After` header."""
        _check_tokens(tokens)
        with self._lock:
            limit = self.limit
            if limit is None:
                return 0.0
            bucket = self._bucket(key, limit)
            self._refill(bucket, limit)
            return _shortfall(bucket, limit, tokens)

    async def acquire(self, key: Key = None, tokens: int = 1) -> None:
        """Wait until one request (and `tokens` model tokens) can be taken, then take
        them. Waiters of a key are served in arrival order; cancelling drops the place
        in line and takes nothing."""
        _check_tokens(tokens)
        with self._lock:
            limit = self.limit
            if limit is None:
                return
            bucket = self._bucket(key, limit)
            if not bucket.waiters and self._take(bucket, limit, tokens) is None:
                return
            waiter = _Waiter(tokens)
            bucket.waiters.append(waiter)
            if bucket.waiters[0] is waiter:
                waiter.turn.set()
        try:
            while True:
                await waiter.turn.wait()
                with self._lock:
                    limit = self.limit
                    delay = None if limit is None else self._take(bucket, limit, tokens)
                    if delay is None:
                        self._leave(bucket, waiter)
                        return
                await self._sleep(min(delay, self._recheck))
        except BaseException:
            with self._lock:
                self._leave(bucket, waiter)
            raise

    def __repr__(self) -> str:
        return f"LiveRateLimiter({self.name!r}, limit={self.limit!r}, keys={self.tracked_keys})"

    # -- buckets (called with the lock held) --------------------------------------

    def _bucket(self, key: Key, limit: Limit) -> _Bucket:
        now = self._clock()
        if now - self._last_sweep >= self._sweep_interval:
            self._sweep(limit, now)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(float(limit.burst), _token_capacity(limit), now)
            self._buckets[key] = bucket
        return bucket

    def _refill(self, bucket: _Bucket, limit: Limit) -> None:
        now = self._clock()
        elapsed = max(0.0, now - bucket.updated)
        bucket.updated = now
        bucket.requests = min(float(limit.burst), bucket.requests + elapsed * limit.rate_per_second)
        capacity = _token_capacity(limit)
        if capacity is None:
            bucket.tokens = None
        elif bucket.tokens is None:
            bucket.tokens = capacity
        else:
            bucket.tokens = min(capacity, bucket.tokens + elapsed * capacity / SECONDS_PER_MINUTE)

    def _take(self, bucket: _Bucket, limit: Limit, tokens: int) -> float | None:
        """Take if possible (None); else the seconds until possible."""
        self._refill(bucket, limit)
        shortfall = _shortfall(bucket, limit, tokens)
        if shortfall > 0:
            return shortfall
        bucket.requests -= 1
        if bucket.tokens is not None:
            bucket.tokens -= tokens
        return None

    def _leave(self, bucket: _Bucket, waiter: _Waiter) -> None:
        was_head = bool(bucket.waiters) and bucket.waiters[0] is waiter
        try:
            bucket.waiters.remove(waiter)
        except ValueError:
            return
        if was_head and bucket.waiters:
            bucket.waiters[0].turn.set()

    def _sweep(self, limit: Limit, now: float) -> None:
        self._last_sweep = now
        for key, bucket in list(self._buckets.items()):
            if bucket.waiters:
                continue
            self._refill(bucket, limit)
            capacity = _token_capacity(limit)
            full_tokens = bucket.tokens is None or (
                capacity is not None and bucket.tokens >= capacity
            )
            if bucket.requests >= limit.burst and full_tokens:
                del self._buckets[key]


def _shortfall(bucket: _Bucket, limit: Limit, tokens: int) -> float:
    """Seconds until the bucket holds one request and the tokens asked (0.0: now)."""
    wait = max(0.0, (1.0 - bucket.requests) / limit.rate_per_second)
    capacity = _token_capacity(limit)
    if capacity is not None and bucket.tokens is not None:
        need = min(float(tokens), capacity) - bucket.tokens
        wait = max(wait, need / (capacity / SECONDS_PER_MINUTE))
    return wait


def _check_tokens(tokens: int) -> None:
    if tokens < 0:
        raise ValueError("tokens must be >= 0")
