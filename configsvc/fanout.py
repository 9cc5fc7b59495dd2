"""One etcd watch per process, fanned out to every watch stream; each event encoded once.

The fan-out follows the store with a single watch on the service's key prefix, from an
explicit revision, re-established from the last revision seen after any etcd error. Each
document change is encoded once as SSE bytes (and once more with secrets masked, if its kind
has secrets), kept in a bounded ring of recent events, and the same bytes are written to
every subscriber of its namespace.

A subscriber joins at an exact revision boundary: it is registered first (live events from
then on are held back for it), then it is sent a snapshot, the ring's events, or the changes
replayed from the history records, and then the held-back events newer than what it was sent.
Each subscriber skips events at or below the last revision it was sent, so nothing arrives
twice and nothing is skipped. A subscriber whose buffer fills up is dropped; it resumes from
its last revision.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections import deque
from collections.abc import Callable, Coroutine, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from configsvc.errors import ApiError, StoreUnavailable
from configsvc.metrics import Metrics
from configsvc.registry import KindRegistry
from configsvc.settings import MAX_WATCH_STREAMS
from configsvc.store.etcd_client import EtcdKV
from configsvc.store.keys import KeyLayout
from configsvc.store.records import Document
from configsvc.store.replay import Change, Replayer

log = logging.getLogger("configsvc.fanout")

KEEPALIVE_COMMENT = b": keep-alive\n\n"

T = TypeVar("T")
U = TypeVar("U")


@dataclass(frozen=True)
class FanoutOptions:
    """Bounds and timers of the fan-out."""

    keepalive: float = 15.0
    """Seconds between keep-alive comments on every stream."""
    sweep_interval: float = 1.0
    """Seconds between checks for streams whose client went away."""
    ring_events: int = 10_000
    """Recent events kept in memory for resumes that need no store read."""
    ring_bytes: int = 64 * 1024 * 1024
    """Bytes of encoded events the ring may hold."""
    max_subscribers: int = MAX_WATCH_STREAMS
    """Open streams per process; past it, new watches get 503."""
    max_buffer_bytes: int = 4 * 1024 * 1024
    """Unsent bytes a stream may have before it is dropped as too slow."""
    max_pending_events: int = 10_000
    """Live events held for a stream while it catches up before it is dropped."""
    retry_initial: float = 0.1
    retry_max: float = 5.0
    """Backoff bounds (seconds) for re-establishing the etcd watch."""


def sse(revision: int, event: str, data: bytes) -> bytes:
    """One Server-Sent Event; `data` is one line of JSON."""
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (revision, event.encode(), data)


def chunk(payload: bytes) -> bytes:
    """`payload` framed as one HTTP/1.1 chunk."""
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


class EncodedEvent:
    """An event as SSE bytes, clear and (if it differs) masked; chunk framing made lazily."""

    __slots__ = ("_framed_clear", "_framed_masked", "clear", "masked", "namespace", "revision")

    def __init__(self, revision: int, namespace: str, clear: bytes, masked: bytes | None) -> None:
        self.revision = revision
        self.namespace = namespace
        self.clear = clear
        self.masked = masked
        self._framed_clear: bytes | None = None
        self._framed_masked: bytes | None = None

    def raw(self, secrets: bool) -> bytes:
        return self.clear if secrets or self.masked is None else self.masked

    def framed(self, secrets: bool) -> bytes:
        if secrets or self.masked is None:
            if self._framed_clear is None:
                self._framed_clear = chunk(self.clear)
            return self._framed_clear
        if self._framed_masked is None:
            self._framed_masked = chunk(self.masked)
        return self._framed_masked

    @property
    def size(self) -> int:
        return len(self.clear) + (len(self.masked) if self.masked else 0)


class EventEncoder:
    """Encodes documents into events, masking secrets with the registry's kinds."""

    def __init__(self, registry: KindRegistry) -> None:
        self.registry = registry

    def put(self, document: Document) -> EncodedEvent:
        clear = sse(document.revision, "put", _json(document.to_json()))
        kind = self.registry.find(document.kind)
        masked = None
        if kind is not None and kind.secrets:
            masked_doc = document.to_json(kind.mask(document.spec))
            masked = sse(document.revision, "put", _json(masked_doc))
        return EncodedEvent(document.revision, document.namespace, clear, masked)

    def delete(self, ns: str, name: str, revision: int) -> EncodedEvent:
        data = _json({"namespace": ns, "name": name, "revision": revision})
        return EncodedEvent(revision, ns, sse(revision, "delete", data), None)

    def change(self, change: Change) -> EncodedEvent:
        if change.document is None:
            return self.delete(change.namespace, change.name, change.revision)
        return self.put(change.document)

    def snapshot(
        self, revision: int, namespaces: Iterable[str], documents: list[Document], secrets: bool
    ) -> bytes:
        items = []
        for document in documents:
            kind = self.registry.find(document.kind)
            masked = not secrets and kind is not None and kind.secrets
            items.append(document.to_json(kind.mask(document.spec) if masked and kind else None))
        data = {"revision": revision, "namespaces": sorted(namespaces), "items": items}
        return sse(revision, "snapshot", _json(data))


class StreamWriter(Protocol):
    """Where a subscriber's bytes go. `write` returns False when the stream must be dropped."""

    def write(self, raw: bytes, framed: bytes) -> bool: ...

    def is_closed(self) -> bool: ...

    def abort(self) -> None: ...


def _new_future() -> asyncio.Future[str]:
    return asyncio.get_running_loop().create_future()


@dataclass(eq=False, slots=True)
class Subscriber:
    """One open watch stream."""

    namespaces: frozenset[str]
    secrets: bool
    token_name: str
    writer: StreamWriter
    after: int = 0
    """The last revision this stream was sent (events at or below it are skipped)."""
    pending: list[EncodedEvent] | None = field(default_factory=list)
    """Live events held back while the stream catches up; None once it is live."""
    done: asyncio.Future[str] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def send_raw(self, revision: int, raw: bytes) -> bool:
        """Write a one-off event (a snapshot) and move `after` to its revision."""
        if not self.writer.write(raw, chunk(raw)):
            return False
        self.after = max(self.after, revision)
        return True

    def send(self, event: EncodedEvent) -> bool:
        """Write `event` unless it is not newer than `after`; False when the write failed."""
        if event.revision <= self.after:
            return True
        if not self.writer.write(event.raw(self.secrets), event.framed(self.secrets)):
            return False
        self.after = event.revision
        return True

    def offer(self, event: EncodedEvent, max_pending: int) -> bool:
        """Send `event`, or hold it while catching up; False when the stream must be dropped."""
        if self.pending is None:
            return self.send(event)
        if event.revision > self.after:
            self.pending.append(event)
        return len(self.pending) <= max_pending

    def finish(self, reason: str) -> None:
        if not self.done.done():
            self.done.set_result(reason)


class SharedRead(Generic[T]):
    """One store read for the streams that start while it runs, and what is made of its
    result once for all of them (e.g. an encoding per secrets variant)."""

    def __init__(self, read: Coroutine[Any, Any, T]) -> None:
        self.task: asyncio.Task[T] = asyncio.ensure_future(read)
        self.task.add_done_callback(_consume_error)
        self._made: dict[Hashable, Any] = {}

    def once(self, key: Hashable, make: Callable[[], U]) -> U:
        """`make()`, called only the first time `key` is asked for."""
        if key not in self._made:
            self._made[key] = make()
        made: U = self._made[key]
        return made


def _consume_error(task: asyncio.Task[Any]) -> None:
    """Mark a failed shared read's error as seen (its streams may all have gone)."""
    if not task.cancelled():
        task.exception()


class WatchCapacityError(StoreUnavailable):
    """The process holds as many streams as it may."""


class Fanout:
    """The process's single store watch and its subscribers."""

    def __init__(
        self,
        kv: EtcdKV,
        layout: KeyLayout,
        registry: KindRegistry,
        metrics: Metrics,
        options: FanoutOptions,
    ) -> None:
        self.kv = kv
        self.layout = layout
        self.encoder = EventEncoder(registry)
        self.replayer = Replayer(kv, layout)
        self.metrics = metrics
        self.options = options
        self.head = 0
        """The last store revision the watch has processed."""
        self.floor = 0
        """The ring holds every event newer than this revision."""
        self._ring: deque[EncodedEvent] = deque()
        self._ring_bytes = 0
        self._by_namespace: dict[str, set[Subscriber]] = {}
        self._reads: dict[Hashable, SharedRead[Any]] = {}
        """Catch-up reads in flight, for streams that start meanwhile (see `_catch_up`)."""
        self._subscribers: set[Subscriber] = set()
        self._ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._opening: set[asyncio.Task[None]] = set()
        """Streams catching up in tasks of their own (see `open_stream`)."""
        self._doc_root = layout.docs_root()
        self._token_root = layout.tokens_root()

    # ---- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._watch_loop(), name="configsvc-fanout-watch"),
            asyncio.create_task(self._maintenance_loop(), name="configsvc-fanout-maintenance"),
        ]

    async def stop(self) -> None:
        self.close_all("shutdown")
        tasks = [*self._tasks, *self._opening]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def close_all(self, reason: str) -> None:
        """End every open stream (e.g. on SIGTERM), so clients resume on another instance."""
        for subscriber in list(self._subscribers):
            self._drop(subscriber, reason, abort=False)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    # ---- subscribing -------------------------------------------------------------------

    async def subscribe(self, subscriber: Subscriber, since: int | None) -> None:
        """Register `subscriber` and send it what it missed; it is live when this returns.

        With `since`, every change after that revision is sent; without it, or when the
        history cannot replay that far, a snapshot first.
        """
        self.check_capacity()
        if not self._ready.is_set():
            try:
                await asyncio.wait_for(self._ready.wait(), self.kv.timeout)
            except TimeoutError:
                raise StoreUnavailable("the store watch is not established yet") from None
        self._add(subscriber)
        try:
            if since is not None and self.floor <= since <= self.head:
                self._send_from_ring(subscriber, since)
            else:
                await self._catch_up(subscriber, since)
            if not subscriber.done.done():
                self._go_live(subscriber)
        except BaseException:
            self._remove(subscriber)
            raise

    def open_stream(self, subscriber: Subscriber, since: int | None) -> None:
        """`subscribe` in a task of the fan-out's own, for a stream whose request is over;
        the subscriber is finished if the store fails while it catches up."""
        task = asyncio.create_task(self._open(subscriber, since))
        self._opening.add(task)
        task.add_done_callback(self._opening.discard)

    async def _open(self, subscriber: Subscriber, since: int | None) -> None:
        try:
            await self.subscribe(subscriber, since)
        except ApiError as error:
            log.info("watch stream ended during its catch-up: %s", error.message)
            subscriber.finish("unavailable")
        except Exception:
            log.exception("watch stream failed during its catch-up")
            subscriber.finish("error")

    def check_capacity(self) -> None:
        """Raise `WatchCapacityError` (503) when no more streams may open."""
        if len(self._subscribers) >= self.options.max_subscribers:
            raise WatchCapacityError("this instance serves as many watch streams as it may")

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._remove(subscriber)

    def _send_from_ring(self, subscriber: Subscriber, since: int) -> None:
        subscriber.after = since
        newer: list[EncodedEvent] = []
        for event in reversed(self._ring):
            if event.revision <= since:
                break
            if event.namespace in subscriber.namespaces:
                newer.append(event)
        for event in reversed(newer):
            if not self._write(subscriber, event):
                return

    async def _catch_up(self, subscriber: Subscriber, since: int | None) -> None:
        """Send what `subscriber` missed since `since` (a snapshot without it), then the
        ring's events newer than what was read.

        Streams that start together (a reconnect storm after a restart) share one store
        read per namespaces and resume point, and what is encoded of it. A shared read may
        have begun before this subscriber joined: the ring's newer events close that gap,
        and when the ring no longer reaches back to the read's revision, the subscriber
        reads on its own.
        """
        namespaces = sorted(subscriber.namespaces)
        if since is None:
            await self._send_snapshot(subscriber, namespaces)
            return
        key = ("changes", tuple(namespaces), since)
        shared = self._shared(key, lambda: self.replayer.changes_since(namespaces, since))
        replay = await asyncio.shield(shared.task)
        if replay is not None and self.floor > replay[0]:
            shared = SharedRead(self.replayer.changes_since(namespaces, since))
            replay = await shared.task
        if replay is None:  # the history no longer holds every change since then
            await self._send_snapshot(subscriber, namespaces)
            return
        revision, changes = replay
        if since > revision:
            # A resume point the store has not reached (e.g. etcd restored from a backup):
            # it cannot be honoured, so the client starts over from a snapshot.
            await self._send_snapshot(subscriber, namespaces)
            return
        events = shared.once("events", lambda: [self.encoder.change(c) for c in changes])
        subscriber.after = since
        for event in events:
            if not self._write(subscriber, event):
                return
        self._send_from_ring(subscriber, revision)

    async def _send_snapshot(self, subscriber: Subscriber, namespaces: list[str]) -> None:
        """Send a snapshot of `namespaces`, then the ring's events newer than it."""
        key = ("snapshot", tuple(namespaces))
        shared = self._shared(key, lambda: self.replayer.snapshot(namespaces))
        snapshot = await asyncio.shield(shared.task)
        if self.floor > snapshot.revision:
            shared = SharedRead(self.replayer.snapshot(namespaces))
            snapshot = await shared.task
        raw = shared.once(
            subscriber.secrets,
            lambda: self.encoder.snapshot(
                snapshot.revision, namespaces, snapshot.documents, subscriber.secrets
            ),
        )
        if not subscriber.send_raw(snapshot.revision, raw):
            self._drop(subscriber, "slow", abort=True)
            return
        self._send_from_ring(subscriber, snapshot.revision)

    def _shared(self, key: Hashable, read: Callable[[], Coroutine[Any, Any, T]]) -> SharedRead[T]:
        """The read under `key` in flight, or a new one started with `read()`."""
        shared: SharedRead[T] | None = self._reads.get(key)
        if shared is None:
            shared = self._reads[key] = SharedRead(read())
            shared.task.add_done_callback(lambda _task: self._forget_read(key, shared))
        return shared

    def _forget_read(self, key: Hashable, shared: SharedRead[Any]) -> None:
        if self._reads.get(key) is shared:
            del self._reads[key]

    def _write(self, subscriber: Subscriber, event: EncodedEvent) -> bool:
        """Write `event` to a subscriber that is not live yet; drop it on failure."""
        if subscriber.send(event):
            return True
        self._drop(subscriber, "slow", abort=True)
        return False

    def _go_live(self, subscriber: Subscriber) -> None:
        held = subscriber.pending or []
        subscriber.pending = None
        for event in held:
            if not subscriber.offer(event, self.options.max_pending_events):
                self._drop(subscriber, "slow", abort=True)
                return

    def _add(self, subscriber: Subscriber) -> None:
        self._subscribers.add(subscriber)
        for ns in subscriber.namespaces:
            self._by_namespace.setdefault(ns, set()).add(subscriber)
        self.metrics.watch_subscribers.set(len(self._subscribers))

    def _remove(self, subscriber: Subscriber) -> None:
        if subscriber not in self._subscribers:
            return
        self._subscribers.discard(subscriber)
        for ns in subscriber.namespaces:
            group = self._by_namespace.get(ns)
            if group is not None:
                group.discard(subscriber)
                if not group:
                    del self._by_namespace[ns]
        self.metrics.watch_subscribers.set(len(self._subscribers))

    def _drop(self, subscriber: Subscriber, reason: str, *, abort: bool) -> None:
        self._remove(subscriber)
        if abort:
            subscriber.writer.abort()
        subscriber.finish(reason)

    # ---- the store watch ---------------------------------------------------------------

    async def _watch_loop(self) -> None:
        delay = self.options.retry_initial
        while True:
            try:
                if not self._ready.is_set():
                    self.head = await self.kv.status()
                    self.floor = self.head
                    self._ready.set()
                watch = await self.kv.watch_prefix(self.layout.prefix.encode(), self.head + 1)
                delay = self.options.retry_initial
                async for event in watch:
                    self._on_event(event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if type(exc).__name__ == "RevisionCompactedError":
                    self._resync()
                    continue
                log.warning("store watch interrupted (%s); resuming from %d", exc, self.head + 1)
            await asyncio.sleep(random.uniform(0, delay))  # noqa: S311 - jitter
            delay = min(self.options.retry_max, delay * 2)

    def _resync(self) -> None:
        """The watch fell behind etcd's compaction: start over from the current revision.

        Every stream is ended; clients resume from their last revision, which the history
        records replay exactly, or get a snapshot. Until the watch loop has read the current
        revision again (retrying, with backoff, while etcd cannot answer), new streams wait
        as they do at start, so that none is served from the emptied ring or caught up to a
        revision the restarted watch would skip.
        """
        log.warning("store watch behind compaction at %d; resynchronising", self.head)
        self._ready.clear()
        self.close_all("resync")
        self._ring.clear()
        self._ring_bytes = 0

    def _on_event(self, event: Any) -> None:
        kv = event.kv
        key: bytes = kv.key
        revision: int = kv.mod_revision
        if key.startswith(self._doc_root):
            parsed = self.layout.parse_doc(key)
            if parsed is not None and parsed[1]:
                ns, name = parsed
                if event.kind == "PUT":
                    document = Document.from_stored(ns, name, kv.value, revision)
                    self._publish(self.encoder.put(document))
                else:
                    self._publish(self.encoder.delete(ns, name, revision))
        elif key.startswith(self._token_root) and event.kind == "DELETE":
            self._revoke(key[len(self._token_root) :].decode())
        self.head = max(self.head, revision)

    def _publish(self, event: EncodedEvent) -> None:
        self._remember(event)
        group = self._by_namespace.get(event.namespace)
        if not group:
            return
        sent = 0
        max_pending = self.options.max_pending_events
        for subscriber in list(group):
            if subscriber.offer(event, max_pending):
                sent += 1
            else:
                self._drop(subscriber, "slow", abort=True)
        self.metrics.events_sent.inc(sent)

    def _remember(self, event: EncodedEvent) -> None:
        self._ring.append(event)
        self._ring_bytes += event.size
        while self._ring and (
            len(self._ring) > self.options.ring_events or self._ring_bytes > self.options.ring_bytes
        ):
            dropped = self._ring.popleft()
            self._ring_bytes -= dropped.size
            self.floor = dropped.revision

    def _revoke(self, token_name: str) -> None:
        for subscriber in list(self._subscribers):
            if subscriber.token_name == token_name:
                self._drop(subscriber, "revoked", abort=False)

    # ---- keep-alive and sweeping -------------------------------------------------------

    async def _maintenance_loop(self) -> None:
        framed_keepalive = chunk(KEEPALIVE_COMMENT)
        interval = min(self.options.sweep_interval, self.options.keepalive)
        loop = asyncio.get_running_loop()
        next_keepalive = loop.time() + self.options.keepalive
        while True:
            await asyncio.sleep(interval)
            keepalive_due = loop.time() >= next_keepalive
            if keepalive_due:
                next_keepalive = loop.time() + self.options.keepalive
            for subscriber in list(self._subscribers):
                if subscriber.writer.is_closed():
                    self._drop(subscriber, "gone", abort=False)
                elif (
                    keepalive_due
                    and subscriber.pending is None
                    and not subscriber.writer.write(KEEPALIVE_COMMENT, framed_keepalive)
                ):
                    self._drop(subscriber, "slow", abort=True)
