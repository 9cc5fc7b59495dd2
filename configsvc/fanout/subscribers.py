"""Open watch streams: each stream's state, and the registry of all of them by namespace.

A subscriber joins at an exact revision boundary: it is registered first, so that live
events from then on are held back for it (`pending`) while it is caught up; once caught up
it goes live and the held-back events newer than what it was sent follow. Each subscriber
skips events at or below the last revision it was sent (`after`), so nothing arrives twice
and nothing is skipped.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol

from configsvc.fanout.encoding import KEEPALIVE_COMMENT, chunk
from configsvc.fanout.variants import Event, RolloutMove
from configsvc.metrics import Metrics
from configsvc.rollouts.choice import Identity

FRAMED_KEEPALIVE = chunk(KEEPALIVE_COMMENT)


class StreamWriter(Protocol):
    """Where a subscriber's bytes go. `write` returns False when the stream must be dropped."""

    def write(self, raw: bytes, framed: bytes) -> bool: ...

    def is_closed(self) -> bool: ...

    def abort(self) -> None: ...


@dataclass(eq=False, slots=True)
class Subscriber:
    """One open watch stream."""

    namespaces: frozenset[str]
    secrets: bool
    token_name: str
    writer: StreamWriter
    after: int = 0
    """The last revision this stream was sent (events at or below it are skipped)."""
    pending: list[Event] | None = field(default_factory=list)
    """Live events held back while the stream catches up; None once it is live."""
    done: asyncio.Future[str] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    """Resolves with the reason the stream ended (`gone`, `slow`, `revoked`, …)."""
    identity: Identity | None = None
    """The SDK instance the stream is for, as it named itself (rollouts choose by it)."""

    def send_raw(self, revision: int, raw: bytes) -> bool:
        """Write a one-off event (a snapshot) and move `after` to its revision."""
        if not self.writer.write(raw, chunk(raw)):
            return False
        self.after = max(self.after, revision)
        return True

    def send(self, event: Event) -> bool:
        """Write `event` unless it is not newer than `after` (or is a rollout's move that
        does not move this stream); False when the write failed."""
        if event.revision <= self.after:
            return True
        if isinstance(event, RolloutMove):
            variant = event.resolve(self.identity)
            if variant is None:
                return True
            event = variant
        if not self.writer.write(event.raw(self.secrets), event.framed(self.secrets)):
            return False
        self.after = event.revision
        return True

    def offer(self, event: Event, max_pending: int) -> bool:
        """Send `event`, or hold it while catching up; False when the stream must be dropped."""
        if self.pending is None:
            return self.send(event)
        if event.revision > self.after:
            self.pending.append(event)
        return len(self.pending) <= max_pending

    def go_live(self, max_pending: int) -> bool:
        """Send the held-back events and take live events directly from now on; False when
        the stream must be dropped."""
        held = self.pending or []
        self.pending = None
        return all(self.offer(event, max_pending) for event in held)

    def keepalive(self) -> bool:
        """Write a keep-alive comment (live streams only); False when the write failed."""
        return self.pending is not None or self.writer.write(KEEPALIVE_COMMENT, FRAMED_KEEPALIVE)

    def say(self, text: str) -> None:
        """Write `text` as an SSE comment (clients ignore it; people and logs read it)."""
        comment = b": " + text.replace("\n", " ").encode() + b"\n\n"
        self.writer.write(comment, chunk(comment))

    def finish(self, reason: str) -> None:
        if not self.done.done():
            self.done.set_result(reason)


class NamedStreamListener(Protocol):
    """Told of every stream an SDK instance names itself on, as it opens and as it ends."""

    def stream_opened(self, instance: str, token_name: str) -> None: ...

    def stream_closed(self, instance: str, token_name: str) -> None: ...


class Subscribers:
    """Every open stream of the process, by namespace; the gauge of open streams."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._all: set[Subscriber] = set()
        self._by_namespace: dict[str, set[Subscriber]] = {}
        self.listener: NamedStreamListener | None = None

    def __len__(self) -> int:
        return len(self._all)

    def __contains__(self, subscriber: Subscriber) -> bool:
        return subscriber in self._all

    def of_namespace(self, ns: str) -> list[Subscriber]:
        """The streams watching `ns` (a copy: dropping one while iterating is safe)."""
        group = self._by_namespace.get(ns)
        return list(group) if group else []

    def add(self, subscriber: Subscriber) -> None:
        self._all.add(subscriber)
        for ns in subscriber.namespaces:
            self._by_namespace.setdefault(ns, set()).add(subscriber)
        self._metrics.watch_subscribers.set(len(self._all))
        if self.listener is not None and subscriber.identity is not None:
            self.listener.stream_opened(subscriber.identity.instance, subscriber.token_name)

    def remove(self, subscriber: Subscriber) -> None:
        if subscriber not in self._all:
            return
        self._all.discard(subscriber)
        for ns in subscriber.namespaces:
            group = self._by_namespace.get(ns)
            if group is not None:
                group.discard(subscriber)
                if not group:
                    del self._by_namespace[ns]
        self._metrics.watch_subscribers.set(len(self._all))
        if self.listener is not None and subscriber.identity is not None:
            self.listener.stream_closed(subscriber.identity.instance, subscriber.token_name)

    def drop(self, subscriber: Subscriber, reason: str, *, abort: bool) -> None:
        """End a stream: `abort` cuts the connection (a slow reader), else it ends cleanly."""
        self.remove(subscriber)
        if abort:
            subscriber.writer.abort()
        subscriber.finish(reason)

    def drop_all(self, reason: str, say: str | None = None) -> None:
        """End every stream, after writing `say` to each as a comment."""
        for subscriber in list(self._all):
            if say is not None:
                subscriber.say(say)
            self.drop(subscriber, reason, abort=False)

    def drop_token(self, token_name: str, reason: str) -> None:
        """End every stream opened with the token called `token_name`."""
        for subscriber in list(self._all):
            if subscriber.token_name == token_name:
                self.drop(subscriber, reason, abort=False)

    def sweep(self, keepalive_due: bool) -> None:
        """Forget streams whose client went away; send keep-alives when they are due."""
        for subscriber in list(self._all):
            if subscriber.writer.is_closed():
                self.drop(subscriber, "gone", abort=False)
            elif keepalive_due and not subscriber.keepalive():
                self.drop(subscriber, "slow", abort=True)
