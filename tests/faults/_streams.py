"""Lean watch streams: hundreds of SSE readers on one event loop, each checking what it gets.

A stream is an asyncio Protocol that sends one raw `GET /v1/watch`, decodes the chunked
body and the SSE events, and applies them as a client would: a snapshot replaces what it
holds, a put moves one document on. On every event it checks the promises of the watch
stream (ids strictly increasing, no duplicates; per document, versions strictly increasing
with no gap, since a stream that resumes must deliver every change) and records what
breaks them. When its connection ends it reconnects after a full-jitter backoff
(`uniform(0, min(cap, initial * 2**attempt))`, as the SDK does), to the next of its URLs,
resuming with `Last-Event-ID`.

Each connection attempt and each stream (re)established is time-stamped, so that a test
can see how reconnections spread over time.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

T = TypeVar("T")

SDK_BACKOFF_INITIAL = 0.5
SDK_BACKOFF_CAP = 30.0
SDK_BACKOFF_RESET_AFTER = 60.0
"""The SDK's reconnect defaults (see `configsvc_client.ClientOptions`)."""
QUICK_BACKOFF = {"backoff_initial": 0.05, "backoff_cap": 1.0}
"""`StreamFleet` options: streams that reconnect as the fault suite's SDK clients do."""
MAX_VIOLATIONS_KEPT = 20
CALL_TIMEOUT = 30.0
"""Seconds a call into the streams' loop may take."""
LAG_TICK = 0.01
"""Seconds between the loop-lag probes (a stalled loop would distort the timings)."""
OPEN_BATCH = 100
"""Streams opened at once, each batch waiting for its snapshots (no accept-backlog storm)."""


@dataclass
class StreamRecord:
    """What one stream saw and did; read it with `StreamFleet.snapshot`."""

    index: int
    docs: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Per document name: (version, revision) applied last."""
    last_id: int | None = None
    violations: list[str] = field(default_factory=list)
    violation_count: int = 0
    snapshots: int = 0
    puts: int = 0
    keepalives: int = 0
    refusals: int = 0
    attempts: list[float] = field(default_factory=list)
    """Monotonic times of every connection attempt."""
    established: list[float] = field(default_factory=list)
    """Monotonic times at which a 200 event stream was answered."""
    lost: list[float] = field(default_factory=list)
    """Monotonic times at which a connection ended (or failed to open)."""
    streaming: bool = False

    def violate(self, message: str) -> None:
        self.violation_count += 1
        if len(self.violations) < MAX_VIOLATIONS_KEPT:
            self.violations.append(message)

    def copy(self) -> StreamRecord:
        return StreamRecord(
            self.index, dict(self.docs), self.last_id, list(self.violations),
            self.violation_count, self.snapshots, self.puts, self.keepalives, self.refusals,
            list(self.attempts), list(self.established), list(self.lost), self.streaming,
        )  # fmt: skip


class _Connection(asyncio.Protocol):
    """One HTTP connection of a stream: headers, chunked body, SSE blocks."""

    def __init__(self, stream: LeanStream) -> None:
        self.stream = stream
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.sse = b""
        self.answered = False
        self.chunked = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        if self is not self.stream.conn:  # paused or closed while connecting
            self.transport.close()
            return
        self.transport.write(self.stream.request())

    def data_received(self, data: bytes) -> None:
        if self is not self.stream.conn:
            return
        self.buffer += data
        if not self.answered:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            self.answered = True
            status = head.split(b" ", 2)[1] if head.count(b" ") else b""
            if status != b"200":
                self.stream.refused(status.decode(errors="replace"))
                self.close()
                return
            self.chunked = b"transfer-encoding: chunked" in head.lower()
            self.stream.answered(self)
        if self.chunked:
            self._dechunk()
        else:
            self.sse += self.buffer
            self.buffer = b""
        while (end := self.sse.find(b"\n\n")) >= 0:
            block, self.sse = self.sse[:end], self.sse[end + 2 :]
            self.stream.block(block)

    def _dechunk(self) -> None:
        while (line_end := self.buffer.find(b"\r\n")) >= 0:
            size = int(self.buffer[:line_end].split(b";", 1)[0], 16)
            if size == 0:
                self.close()  # the service ended the response
                return
            start = line_end + 2
            if len(self.buffer) < start + size + 2:
                return
            self.sse += self.buffer[start : start + size]
            self.buffer = self.buffer[start + size + 2 :]

    def connection_lost(self, exc: Exception | None) -> None:
        self.stream.lost(self)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class LeanStream:
    """One client of the watch API; lives on the fleet's event loop."""

    def __init__(self, fleet: StreamFleet, index: int, urls: list[str]) -> None:
        self.fleet = fleet
        self.record = StreamRecord(index)
        self.targets = [_host_port(url) for url in urls]
        self.target = 0
        self.conn: _Connection | None = None
        self.attempt = 0
        self.connected_at: float | None = None
        self.paused = False
        self.closed = False
        self._retry: asyncio.TimerHandle | None = None

    # ---- connecting --------------------------------------------------------------------

    def request(self) -> bytes:
        host, port = self.targets[self.target]
        lines = [
            f"GET /v1/watch?namespace={self.fleet.namespace} HTTP/1.1",
            f"Host: {host}:{port}",
            "Accept: text/event-stream",
            f"Authorization: Bearer {self.fleet.token}",
        ]
        if self.record.last_id is not None:
            lines.append(f"Last-Event-ID: {self.record.last_id}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def connect(self) -> None:
        self._retry = None
        if self.paused or self.closed or self.conn is not None:
            return
        self.record.attempts.append(time.monotonic())
        host, port = self.targets[self.target]
        conn = _Connection(self)
        self.conn = conn
        task = self.fleet.loop.create_task(self._open(conn, host, port))
        self.fleet.tasks.add(task)
        task.add_done_callback(self.fleet.tasks.discard)

    async def _open(self, conn: _Connection, host: str, port: int) -> None:
        try:
            await self.fleet.loop.create_connection(lambda: conn, host, port)
        except OSError:
            self.lost(conn)

    def answered(self, conn: _Connection) -> None:
        if conn is self.conn:
            self.connected_at = time.monotonic()
            self.record.established.append(self.connected_at)
            self.record.streaming = True

    def refused(self, status: str) -> None:
        self.record.refusals += 1

    def lost(self, conn: _Connection) -> None:
        if conn is not self.conn:
            return
        self.conn = None
        self.record.streaming = False
        self.record.lost.append(time.monotonic())
        if self.paused or self.closed:
            return
        self.target = (self.target + 1) % len(self.targets)
        self._schedule_retry()

    def _schedule_retry(self) -> None:
        fleet = self.fleet
        now = time.monotonic()
        if self.connected_at is not None and now - self.connected_at >= fleet.reset_after:
            self.attempt = 0
        self.connected_at = None
        bound = min(fleet.backoff_cap, fleet.backoff_initial * 2.0 ** min(self.attempt, 62))
        self.attempt += 1
        self._retry = fleet.loop.call_later(fleet.rng.uniform(0, bound), self.connect)

    def pause(self) -> None:
        """Close the connection and stay away until `resume`."""
        self.paused = True
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self.conn is not None:
            conn, self.conn = self.conn, None
            self.record.streaming = False
            conn.close()

    def resume(self) -> None:
        self.paused = False
        self.connect()

    def close(self) -> None:
        self.closed = True
        self.pause()

    # ---- events ------------------------------------------------------------------------

    def block(self, block: bytes) -> None:
        fields: dict[bytes, bytes] = {}
        for line in block.split(b"\n"):
            if line.startswith(b":"):
                continue
            name, _, value = line.partition(b":")
            fields[name] = value[1:] if value.startswith(b" ") else value
        if not fields:
            self.record.keepalives += 1
            return
        try:
            event_id = int(fields[b"id"])
            self.event(event_id, fields.get(b"event", b""), json.loads(fields[b"data"]))
        except (KeyError, ValueError) as exc:
            self.record.violate(f"unreadable event {block[:120]!r}: {exc}")

    def event(self, event_id: int, kind: bytes, data: dict[str, Any]) -> None:
        record = self.record
        last = record.last_id
        if kind == b"snapshot":
            record.snapshots += 1
            if last is not None and event_id < last:
                record.violate(f"snapshot at {event_id} after event {last}")
            self._apply_snapshot(data)
        elif kind == b"put":
            record.puts += 1
            if last is not None and event_id <= last:
                record.violate(f"event {event_id} after {last}: duplicate or out of order")
            self._apply_put(data, event_id)
        else:
            record.violate(f"unexpected {kind!r} event {event_id}")
        if last is None or event_id > last:
            record.last_id = event_id

    def _apply_snapshot(self, data: dict[str, Any]) -> None:
        docs = self.record.docs
        incoming = {d["name"]: (int(d["version"]), int(d["revision"])) for d in data["items"]}
        for name, (version, revision) in incoming.items():
            held = docs.get(name)
            if held is None or revision > held[1]:
                if held is not None and version <= held[0]:
                    self.record.violate(f"{name}: snapshot version {version} after {held[0]}")
                docs[name] = (version, revision)
            elif revision < held[1]:
                self.record.violate(f"{name}: snapshot revision {revision} below {held[1]}")
        for name in set(docs) - set(incoming):
            self.record.violate(f"{name}: missing from a snapshot (nothing is deleted)")

    def _apply_put(self, data: dict[str, Any], event_id: int) -> None:
        name, version = data["name"], int(data["version"])
        if int(data["revision"]) != event_id:
            self.record.violate(f"{name}: event id {event_id} but revision {data['revision']}")
        held = self.record.docs.get(name)
        if held is not None:
            if version <= held[0]:
                self.record.violate(f"{name}: version {version} after {held[0]}")
            elif version != held[0] + 1:
                self.record.violate(f"{name}: version {version} after {held[0]} (a gap)")
        self.record.docs[name] = (version, int(data["revision"]))


class StreamFleet:
    """Lean streams of one namespace, on an event loop in a thread of their own."""

    def __init__(
        self,
        token: str,
        namespace: str,
        *,
        backoff_initial: float = SDK_BACKOFF_INITIAL,
        backoff_cap: float = SDK_BACKOFF_CAP,
        reset_after: float = SDK_BACKOFF_RESET_AFTER,
        seed: int = 0,
    ) -> None:
        self.token = token
        self.namespace = namespace
        self.backoff_initial = backoff_initial
        self.backoff_cap = backoff_cap
        self.reset_after = reset_after
        self.rng = random.Random(seed)
        self.streams: list[LeanStream] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.loop = asyncio.new_event_loop()
        self.lags: list[tuple[float, float]] = []
        """(when, seconds) of every loop stall longer than 10 probe ticks."""
        self.loop.call_soon(self._probe_lag, time.monotonic() + LAG_TICK)
        self._thread = threading.Thread(target=self.loop.run_forever, name="lean-streams")
        self._thread.daemon = True
        self._thread.start()

    def _probe_lag(self, due: float) -> None:
        now = time.monotonic()
        if now - due > 10 * LAG_TICK:
            self.lags.append((due, now - due))
        self.loop.call_later(LAG_TICK, self._probe_lag, now + LAG_TICK)

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the streams' loop and return its result (a consistent view)."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

        self.loop.call_soon_threadsafe(run)
        return future.result(CALL_TIMEOUT)

    def open(self, url_lists: list[list[str]], within: float = 60.0) -> None:
        """Open one stream per URL list (its failover order), in batches, and wait until
        each has its first snapshot."""
        for start in range(0, len(url_lists), OPEN_BATCH):
            batch = url_lists[start : start + OPEN_BATCH]

            def add(batch: list[list[str]] = batch) -> None:
                for urls in batch:
                    stream = LeanStream(self, len(self.streams), urls)
                    self.streams.append(stream)
                    stream.connect()

            self.call(add)
            self.wait(lambda r: r.snapshots > 0, within)

    def records(self) -> list[StreamRecord]:
        return self.call(lambda: [s.record.copy() for s in self.streams])

    def wait(self, predicate: Callable[[StreamRecord], bool], within: float) -> list[StreamRecord]:
        """Block until every stream's record satisfies `predicate`; returns the records.

        The predicate runs on the streams' loop, over the live records (no copies while
        waiting: copying a thousand records every poll would itself stall the loop).
        """
        deadline = time.monotonic() + within

        def pending() -> StreamRecord | None:
            return next((s.record.copy() for s in self.streams if not predicate(s.record)), None)

        while (sample := self.call(pending)) is not None:
            if time.monotonic() > deadline:
                count = self.call(lambda: sum(not predicate(s.record) for s in self.streams))
                raise AssertionError(
                    f"{count} of {len(self.streams)} streams not there after {within:.0f} s; "
                    f"e.g. #{sample.index}: streaming={sample.streaming} "
                    f"last_id={sample.last_id} docs={sample.docs}"
                )
            time.sleep(0.05)
        return self.records()

    def pause(self) -> None:
        self.call(lambda: [s.pause() for s in self.streams])

    def resume(self) -> None:
        self.call(lambda: [s.resume() for s in self.streams])

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.call(lambda: [s.close() for s in self.streams])
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        if self._thread.is_alive():
            return
        for task in list(self.tasks):
            task.cancel()
        # Let the closed transports report connection_lost, then close the loop cleanly.
        self.loop.run_until_complete(asyncio.sleep(0.05))
        self.loop.close()


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None, url
    return parts.hostname, parts.port
