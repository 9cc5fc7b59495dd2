"""The fan-out: every document change, encoded once, written to every stream of its namespace.

It follows the store through a `ChangeFeed` (the process's one store watch): each document
change is encoded once (`EventEncoder`), kept in the `EventRing`, and the same bytes are
offered to every subscriber of its namespace. A rollout's transition that moves instances is
encoded once too, and each stream takes it or not by its identity (`variants`). A new stream
is registered first, then caught up (`CatchUp`: from the ring, or the store's history, or a
snapshot), then goes live; a stream whose buffer fills up is dropped and resumes from its
last revision.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from configsvc.errors import ApiError, StoreUnavailable
from configsvc.fanout.catchup import CatchUp
from configsvc.fanout.encoding import EventEncoder
from configsvc.fanout.ring import EventRing
from configsvc.fanout.subscribers import NamedStreamListener, Subscriber, Subscribers
from configsvc.fanout.variants import Event, RolloutMove
from configsvc.metrics import Metrics
from configsvc.registry import KindRegistry
from configsvc.settings import MAX_WATCH_STREAMS
from configsvc.store.keys import DOC_FAMILY, ROLLOUT_FAMILY, SPEC_FAMILY, KeyLayout
from configsvc.store.records import DocumentHead
from configsvc.store.replay import Replayer
from configsvc.store.rollout_reads import base_document, candidate_document
from configsvc.store.rollout_record import RolloutRecord
from configsvc.store.spec_codec import SpecCodec
from configsvc.store.watcher import ChangeFeed, FamilyChange

log = logging.getLogger("configsvc.fanout")


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
    ready_timeout: float = 5.0
    """Seconds a new stream waits for the store watch before it is refused (503)."""
    unreachable_after: float = 3.0
    """Seconds the store watch may stay interrupted before every stream is ended, so that
    clients do not stream on, silently, on what this instance last knew: they resume on
    another instance (new streams here wait for the watch, then get 503)."""


class WatchCapacityError(StoreUnavailable):
    """The process holds as many streams as it may."""


class Fanout:
    """The subscribers of one process and what the store feed brings them.

    `options` may be replaced while running (its bounds apply from then on).
    """

    def __init__(
        self,
        feed: ChangeFeed,
        replayer: Replayer,
        codec: SpecCodec,
        registry: KindRegistry,
        metrics: Metrics,
        options: FanoutOptions,
    ) -> None:
        self.options = options
        self._feed = feed
        self._metrics = metrics
        self._encoder = EventEncoder(registry)
        self._ring = EventRing()
        self._subscribers = Subscribers(metrics)
        self._codec = codec
        self._catch_up = CatchUp(replayer, self._encoder, self._ring, self._drop_slow)
        self._maintenance: asyncio.Task[None] | None = None
        self._opening: set[asyncio.Task[None]] = set()
        """Streams catching up in tasks of their own (see `open_stream`)."""
        self._specs: dict[tuple[str, str, int], tuple[int, bytes]] = {}
        """Specs written in the revision being dispatched, by (ns, name, version)."""
        feed.on(SPEC_FAMILY, self._on_spec_change)
        feed.on(DOC_FAMILY, self._on_document_change)
        feed.on(ROLLOUT_FAMILY, self._on_rollout_change)
        feed.on_start(self._ring.reset)
        feed.on_gap(self._on_gap)

    # ---- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self._maintenance = asyncio.create_task(
            self._maintenance_loop(), name="configsvc-fanout-maintenance"
        )

    async def stop(self) -> None:
        self.close_all("shutdown")
        tasks = [*self._opening]
        if self._maintenance is not None:
            tasks.append(self._maintenance)
            self._maintenance = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def close_all(self, reason: str) -> None:
        """End every open stream (e.g. on SIGTERM), so clients resume on another instance."""
        self._subscribers.drop_all(reason)

    def close_streams_of(self, token_name: str) -> None:
        """End every stream of a revoked token."""
        self._subscribers.drop_token(token_name, "revoked")

    def follow_named_streams(self, listener: NamedStreamListener) -> None:
        """Tell `listener` of every stream an SDK instance names itself on, as it opens and
        ends (call before streams open)."""
        self._subscribers.listener = listener

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    @property
    def floor(self) -> int:
        """The ring holds every event newer than this revision."""
        return self._ring.floor

    # ---- subscribing -------------------------------------------------------------------

    def check_capacity(self) -> None:
        """Raise `WatchCapacityError` (503) when no more streams may open."""
        if len(self._subscribers) >= self.options.max_subscribers:
            raise WatchCapacityError("this instance serves as many watch streams as it may")

    async def subscribe(self, subscriber: Subscriber, since: int | None) -> None:
        """Register `subscriber` and send it what it missed; it is live when this returns.

        With `since`, every change after that revision is sent; without it, or when the
        history cannot replay that far, a snapshot first.
        """
        self.check_capacity()
        try:
            async with asyncio.timeout(self.options.ready_timeout):
                await self._feed.wait_ready()
        except TimeoutError:
            raise StoreUnavailable("the store watch is not established yet") from None
        self._subscribers.add(subscriber)
        try:
            if since is not None and self._ring.floor <= since <= self._feed.head:
                self._catch_up.from_ring(subscriber, since)
            else:
                await self._catch_up.from_store(subscriber, since)
            if not subscriber.done.done() and not subscriber.go_live(
                self.options.max_pending_events
            ):
                self._drop_slow(subscriber)
        except BaseException:
            self._subscribers.remove(subscriber)
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
            log.warning("a watch stream ended during its catch-up: %s", error.message)
            subscriber.say(f"stream ended: {error.message}; resume with Last-Event-ID")
            subscriber.finish("unavailable")
        except Exception:
            log.exception("a watch stream failed during its catch-up")
            subscriber.say("stream ended: internal error; resume with Last-Event-ID")
            subscriber.finish("error")

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.remove(subscriber)

    def _drop_slow(self, subscriber: Subscriber) -> None:
        self._subscribers.drop(subscriber, "slow", abort=True)

    # ---- what the store feed brings ----------------------------------------------------

    def _on_spec_change(self, change: FamilyChange) -> None:
        """A version's spec: kept until the document key of the same revision arrives (a
        write puts the spec first, and etcd delivers one revision's changes in order)."""
        parsed = KeyLayout.split_version_key(change.key)
        if parsed is None or change.value is None:
            return
        if any(revision < change.revision for revision, _ in self._specs.values()):
            self._specs.clear()  # of earlier revisions, claimed by no document (a restore)
        self._specs[parsed] = (change.revision, change.value)

    def _on_document_change(self, change: FamilyChange) -> None:
        parsed = KeyLayout.split_doc(change.key)
        if parsed is None or not parsed[1]:
            return  # a namespace marker
        ns, name = parsed
        if change.value is None:
            self._publish(self._encoder.delete(ns, name, change.revision))
            return
        head = DocumentHead.from_stored(ns, name, change.value, change.revision)
        spec = head.legacy_spec
        written = self._specs.pop((ns, name, head.version), None)
        if written is not None and written[0] == change.revision:
            spec = self._codec.decode(ns, name, written[1])
        if spec is None:
            # The document key changed with no new version (a layout migration rewriting
            # it): nothing a reader sees has changed.
            log.debug("%s/%s: document key rewritten at %d", ns, name, change.revision)
            return
        self._publish(self._encoder.put(head.document(spec)))

    def _on_rollout_change(self, change: FamilyChange) -> None:
        """A rollout's transition: those it moves get the candidate (start, step) or the
        base version (abort), encoded once, in one `RolloutMove` (see `variants`)."""
        ns, _, name = change.key.partition("/")
        if change.value is None:
            return
        record = RolloutRecord.from_stored(ns, name, change.value, change.revision)
        action = record.last.action
        if not (action.moves_in or action.moves_out):
            return
        version = record.version if action.moves_in else record.base.version
        written = self._specs.get((ns, name, version))
        if written is None or written[0] != change.revision:
            # Written by hand, or by a release that did not write the spec with it: the
            # streams of the namespace start over from a snapshot, which is exact.
            log.warning("%s/%s: rollout change at %d without its spec", ns, name, change.revision)
            for subscriber in self._subscribers.of_namespace(ns):
                subscriber.say("stream ended: resync; resume with Last-Event-ID")
                self._subscribers.drop(subscriber, "resync", abort=False)
            return
        spec = self._codec.decode(ns, name, written[1])
        make = candidate_document if action.moves_in else base_document
        self._publish(RolloutMove(record, self._encoder.put(make(record, spec))))

    def _on_gap(self) -> None:
        """The feed lost changes: end every stream; clients resume from their last
        revision, which the history records replay exactly, or get a snapshot."""
        self.close_all("resync")

    def _publish(self, event: Event) -> None:
        options = self.options
        self._ring.append(event, options.ring_events, options.ring_bytes)
        sent = 0
        move = event if isinstance(event, RolloutMove) else None
        for subscriber in self._subscribers.of_namespace(event.namespace):
            if not subscriber.offer(event, options.max_pending_events):
                self._drop_slow(subscriber)
            elif move is None or move.resolve(subscriber.identity) is not None:
                sent += 1
        if sent:
            self._metrics.events_sent.inc(sent)

    # ---- keep-alive and sweeping -------------------------------------------------------

    async def _maintenance_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_keepalive = loop.time() + self.options.keepalive
        while True:
            await asyncio.sleep(min(self.options.sweep_interval, self.options.keepalive))
            keepalive_due = loop.time() >= next_keepalive
            if keepalive_due:
                next_keepalive = loop.time() + self.options.keepalive
            self._subscribers.sweep(keepalive_due)
            if self._subscribers and self._feed.down_for() > self.options.unreachable_after:
                log.warning(
                    "the store watch is down for %.1f s: ending %d streams (clients resume "
                    "elsewhere)",
                    self._feed.down_for(),
                    len(self._subscribers),
                )
                self._subscribers.drop_all(
                    "store unreachable",
                    say="stream ended: this instance cannot reach etcd; resume elsewhere",
                )
