"""The time limits of one try: the document's, narrowed by the caller's own, cut to the
call's deadline."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from configsvc_schemas import Timeout

HTTPX_PHASES = ("connect", "read", "write", "pool")
"""The keys of httpx's `timeout` request extension."""

CLIENT_DEFAULT_TIMEOUTS: tuple[Mapping[str, float | None], ...] = (
    {"connect": 5.0, "read": 5.0, "write": 5.0, "pool": 5.0},
    {"connect": 5.0, "read": 600.0, "write": 600.0, "pool": 600.0},
)
"""Timeouts that clients send when nobody chose one (httpx's default of 5 s, and the
openai SDK's of 600 s with 5 s to connect): not a caller's deadline, so they do not
narrow the document's. Any other per-request timeout does."""


def caller_timeouts(
    extension: Mapping[str, float | None] | None,
    ignored: tuple[Mapping[str, float | None], ...] = CLIENT_DEFAULT_TIMEOUTS,
) -> Mapping[str, float | None] | None:
    """The caller's own per-request timeouts, or None (none, or a client's default)."""
    if not extension or extension in ignored:
        return None
    return extension


def _narrow(mine: float, theirs: float | None) -> float:
    return mine if theirs is None or theirs >= mine else theirs


class TryLimits(NamedTuple):
    """The limits of one try, in seconds.

    `connect`/`read`/`write`/`pool` go to httpx. For a streamed answer, `first_byte`
    bounds the time from the try's start to its first body byte and `gap` the pauses
    after it (both enforced by the router, httpx's `read` being at least as long).
    """

    connect: float
    read: float
    write: float
    pool: float
    first_byte: float
    gap: float

    def extension(self) -> dict[str, float | None]:
        """The value of httpx's `timeout` request extension."""
        return {"connect": self.connect, "read": self.read, "write": self.write, "pool": self.pool}


def try_limits(
    timeout: Timeout,
    *,
    streamed: bool,
    adaptive_read: float | None = None,
    caller: Mapping[str, float | None] | None = None,
    remaining: float | None = None,
) -> TryLimits:
    """The limits of a try: `timeout` (with a learnt read timeout in place of `read`),
    each narrowed by the caller's own (never widened), all cut to `remaining`.

    `streamed`: the call asked for a stream, so httpx's read timeout is raised to cover
    `first_token` and `idle` when they are longer than `read`.
    """
    read = adaptive_read if adaptive_read is not None else timeout.read
    connect, write, pool = timeout.connect, timeout.write, timeout.pool
    first_byte = timeout.first_token if timeout.first_token is not None else read
    gap = timeout.idle if timeout.idle is not None else read
    if caller is not None:
        theirs = caller.get("read")
        read = _narrow(read, theirs)
        first_byte = _narrow(first_byte, theirs)
        gap = _narrow(gap, theirs)
        connect = _narrow(connect, caller.get("connect"))
        write = _narrow(write, caller.get("write"))
        pool = _narrow(pool, caller.get("pool"))
    if streamed:
        read = max(read, first_byte, gap)
    if remaining is not None:
        connect, read, write, pool = (
            min(connect, remaining),
            min(read, remaining),
            min(write, remaining),
            min(pool, remaining),
        )
        first_byte, gap = min(first_byte, remaining), min(gap, remaining)
    return TryLimits(connect, read, write, pool, first_byte, gap)


def wait_needed(timeout: Timeout, *, streamed: bool, adaptive_read: float | None) -> float:
    """What a try must be able to wait for to be worth starting under a deadline: its
    read timeout, or `first_token` for a stream."""
    if streamed and timeout.first_token is not None:
        return timeout.first_token
    return adaptive_read if adaptive_read is not None else timeout.read
