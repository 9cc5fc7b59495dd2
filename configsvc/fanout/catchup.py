"""Catching a new stream up: a snapshot, or the changes since its resume point.

Streams that start together (a reconnect storm after a restart) share one store read per
namespaces and resume point, and what is encoded of it (a snapshot once per variant: with
or without secrets, and, while rollouts run, per set of candidates a stream gets). A shared
read may have begun before a stream joined it: the ring's newer events close that gap, and
when the ring no longer reaches back to the read's revision, the stream reads on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Hashable
from typing import Any, Generic, TypeVar

from configsvc.fanout.encoding import EventEncoder
from configsvc.fanout.ring import EventRing
from configsvc.fanout.subscribers import Subscriber
from configsvc.fanout.variants import Event
from configsvc.rollouts.variants import chosen_keys, served_documents
from configsvc.store.replay import Replayer

T = TypeVar("T")
U = TypeVar("U")

Drop = Callable[[Subscriber], None]
"""Ends a stream that could not be written to (a slow reader)."""


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


class CatchUp:
    """Sends a stream what it missed, from the ring or from the store."""

    def __init__(
        self, replayer: Replayer, encoder: EventEncoder, ring: EventRing, drop: Drop
    ) -> None:
        self._replayer = replayer
        self._encoder = encoder
        self._ring = ring
        self._drop = drop
        self._reads: dict[Hashable, SharedRead[Any]] = {}

    def from_ring(self, subscriber: Subscriber, since: int) -> None:
        """Send the ring's events newer than `since` (the ring must reach back to it)."""
        subscriber.after = since
        for event in self._ring.newer_than(since, subscriber.namespaces):
            if not self._write(subscriber, event):
                return

    async def from_store(self, subscriber: Subscriber, since: int | None) -> None:
        """Send every change since `since` from the history records, or a snapshot when
        there is no resume point or the history no longer reaches back to it; then the
        ring's events newer than what was read."""
        namespaces = sorted(subscriber.namespaces)
        if since is None:
            await self._snapshot(subscriber, namespaces)
            return
        key = ("changes", tuple(namespaces), since)
        shared = self._shared(key, lambda: self._replayer.changes_since(namespaces, since))
        replay = await asyncio.shield(shared.task)
        if replay is not None and self._ring.floor > replay[0]:
            shared = SharedRead(self._replayer.changes_since(namespaces, since))
            replay = await shared.task
        if replay is None:  # the history no longer holds every change since then
            await self._snapshot(subscriber, namespaces)
            return
        revision, changes = replay
        if since > revision:
            # A resume point the store has not reached (e.g. etcd restored from a backup):
            # it cannot be honoured, so the client starts over from a snapshot.
            await self._snapshot(subscriber, namespaces)
            return
        events = shared.once("events", lambda: [self._encoder.change(c) for c in changes])
        subscriber.after = since
        for event in events:
            if not self._write(subscriber, event):
                return
        self.from_ring(subscriber, revision)

    async def _snapshot(self, subscriber: Subscriber, namespaces: list[str]) -> None:
        """Send a snapshot of `namespaces`, then the ring's events newer than it."""
        key = ("snapshot", tuple(namespaces))
        shared = self._shared(key, lambda: self._replayer.snapshot(namespaces))
        snapshot = await asyncio.shield(shared.task)
        if self._ring.floor > snapshot.revision:
            shared = SharedRead(self._replayer.snapshot(namespaces))
            snapshot = await shared.task
        identity, secrets = subscriber.identity, subscriber.secrets
        # one encoding per variant: secrets or not, named or not, and the candidates it gets
        named = identity is not None and bool(snapshot.rollouts)
        variant = (secrets, named, chosen_keys(snapshot.rollouts, identity))
        raw = shared.once(
            variant,
            lambda: self._encoder.snapshot(
                snapshot.revision,
                namespaces,
                served_documents(snapshot.documents, snapshot.rollouts, identity)[0],
                secrets,
            ),
        )
        if not subscriber.send_raw(snapshot.revision, raw):
            self._drop(subscriber)
            return
        self.from_ring(subscriber, snapshot.revision)

    def _shared(self, key: Hashable, read: Callable[[], Coroutine[Any, Any, T]]) -> SharedRead[T]:
        """The read under `key` in flight, or a new one started with `read()`."""
        shared: SharedRead[T] | None = self._reads.get(key)
        if shared is None:
            shared = self._reads[key] = SharedRead(read())
            shared.task.add_done_callback(lambda _task: self._forget(key, shared))
        return shared

    def _forget(self, key: Hashable, shared: SharedRead[Any]) -> None:
        if self._reads.get(key) is shared:
            del self._reads[key]

    def _write(self, subscriber: Subscriber, event: Event) -> bool:
        """Write `event` to a stream that is not live yet; drop it on failure."""
        if subscriber.send(event):
            return True
        self._drop(subscriber)
        return False
