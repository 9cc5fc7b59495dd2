"""Lean SSE readers: asyncio Protocols that send one GET and only timestamp event ids.

A reader does no SSE parsing, no JSON and no allocation per event beyond the bytes it is
handed: it finds `\\nid: <digits>\\n` in what arrives and reports each new id to a shared
`Tally` with the time the bytes arrived. The tally notes, per id, when the LAST reader got
it. Many thousands of readers run in one process, so that the figure measured is the
server's, not a client library's.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import cast

ID_MARK = b"\nid: "
"""Every event's id line follows a newline (the chunk header's CRLF or the previous event)."""
TAIL_BYTES = 48
"""Bytes kept from the previous read, so that an id line split across reads is still found."""
OK_STATUS = b"HTTP/1.1 200"


@dataclass
class Tally:
    """Arrivals of event ids at a set of readers; all on one event loop."""

    expected: int = 0
    """How many readers must get an id before it counts as delivered everywhere."""
    ready: int = 0
    """Readers that got their first event (the snapshot)."""
    failed: int = 0
    """Readers refused (non-200) or cut off."""
    counts: dict[int, int] = field(default_factory=dict)
    done_at: dict[int, float] = field(default_factory=dict)
    """perf_counter time at which the last expected reader got each id."""
    first_at: dict[int, float] = field(default_factory=dict)
    """perf_counter time at which the first reader got each id."""
    _waiters: dict[int, asyncio.Future[float]] = field(default_factory=dict)
    _ready_waiter: tuple[int, asyncio.Future[None]] | None = None

    def seen(self, event_id: int, at: float) -> None:
        count = self.counts.get(event_id, 0) + 1
        self.counts[event_id] = count
        if count == 1:
            self.first_at[event_id] = at
        if count == self.expected:
            self._complete(event_id, at)

    def _complete(self, event_id: int, at: float) -> None:
        self.done_at[event_id] = at
        waiter = self._waiters.pop(event_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(at)

    def first_event(self) -> None:
        self.ready += 1
        self._check_ready()

    def refused(self) -> None:
        """A reader was answered something else than 200."""
        self.failed += 1
        self._check_ready()

    def lost(self, was_ready: bool) -> None:
        """A reader was cut off: it no longer counts towards `expected`."""
        self.failed += 1
        if was_ready:
            self.ready -= 1
            if self.expected > 0:
                self.expected -= 1
                now = time.perf_counter()
                for event_id in list(self._waiters):
                    if self.counts.get(event_id, 0) >= self.expected:
                        self._complete(event_id, now)
        self._check_ready()

    def _check_ready(self) -> None:
        if self._ready_waiter is not None:
            target, future = self._ready_waiter
            if self.ready + self.failed >= target and not future.done():
                future.set_result(None)

    async def wait_ready(self, target: int, within: float) -> bool:
        """Wait until `target` readers are ready or failed; False on timeout."""
        if self.ready + self.failed >= target:
            return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._ready_waiter = (target, future)
        try:
            await asyncio.wait_for(future, within)
        except TimeoutError:
            return False
        finally:
            self._ready_waiter = None
        return True

    async def wait_delivered(self, event_id: int, within: float) -> float | None:
        """The time the last expected reader got `event_id`; None if not within `within` seconds."""
        if event_id in self.done_at:
            return self.done_at[event_id]
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiters[event_id] = future
        try:
            return await asyncio.wait_for(future, within)
        except TimeoutError:
            return None
        finally:
            self._waiters.pop(event_id, None)


class LeanReader(asyncio.Protocol):
    """One SSE stream: sends the GET, then only timestamps the ids that arrive."""

    __slots__ = ("_request", "_started", "_tail", "_tally", "last_id", "transport")

    def __init__(self, request: bytes, tally: Tally) -> None:
        self._request = request
        self._tally = tally
        self._tail = b""
        self._started = False
        self.last_id = -1
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport instances, but behave as one
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        at = time.perf_counter()
        if not self._started:
            if not data.startswith(OK_STATUS):
                self._tally.refused()
                self._started = True
                self.last_id = -2
                assert self.transport is not None
                self.transport.close()
                return
            self._started = True
        buf = self._tail + data if self._tail else data
        pos = buf.find(ID_MARK)
        while pos != -1:
            start = pos + len(ID_MARK)
            end = buf.find(b"\n", start)
            if end == -1:
                break
            event_id = int(buf[start:end])
            if event_id > self.last_id:
                if self.last_id == -1:
                    self._tally.first_event()
                self.last_id = event_id
                self._tally.seen(event_id, at)
            pos = buf.find(ID_MARK, end)
        self._tail = buf[-TAIL_BYTES:]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.last_id >= -1:
            self._tally.lost(was_ready=self.last_id >= 0)
        self.last_id = -2

    def close(self) -> None:
        """Close the stream without counting it as a failure."""
        self.last_id = -2
        if self.transport is not None:
            self.transport.close()


def watch_request(host: str, port: int, path: str, token: str | None) -> bytes:
    """The raw HTTP/1.1 GET a reader sends."""
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Accept: text/event-stream",
    ]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@dataclass
class ReaderPool:
    """Readers of one server, opened in batches so that its accept backlog is not overrun."""

    host: str
    port: int
    request: bytes
    tally: Tally = field(default_factory=Tally)
    readers: list[LeanReader] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def live(self) -> int:
        return self.tally.ready

    async def grow(self, total: int, batch: int, within: float) -> int:
        """Open streams until `total` are live (or the server or this process refuses more).

        Returns the number of live streams, each of which got its first event.
        """
        loop = asyncio.get_running_loop()
        while self.live < total:
            want = min(batch, total - self.live)
            attempts_before = self.tally.ready + self.tally.failed
            results = await asyncio.gather(
                *(
                    loop.create_connection(
                        lambda: LeanReader(self.request, self.tally), self.host, self.port
                    )
                    for _ in range(want)
                ),
                return_exceptions=True,
            )
            opened = 0
            for result in results:
                if isinstance(result, BaseException):
                    self.errors.append(f"{type(result).__name__}: {result}")
                else:
                    self.readers.append(result[1])
                    opened += 1
            ok = await self.tally.wait_ready(attempts_before + opened, within)
            if opened < want or not ok or self.tally.failed:
                if not ok:
                    self.errors.append(f"streams not ready within {within:g} s")
                break
        self.tally.expected = self.live
        return self.live

    def close(self) -> None:
        for reader in self.readers:
            reader.close()
        self.readers.clear()
        self.tally = Tally()
