"""The recent events kept in memory, so that most resumes need no store read."""

from __future__ import annotations

from collections import deque

from configsvc.fanout.variants import Event


class EventRing:
    """Recent events in revision order, bounded by count and bytes.

    It holds every event newer than `floor`: a stream resuming from a revision in
    `[floor, head]` is caught up from memory alone.
    """

    def __init__(self) -> None:
        self.floor = 0
        self._events: deque[Event] = deque()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._events)

    def append(self, event: Event, max_events: int, max_bytes: int) -> None:
        """Keep `event`; forget the oldest ones past `max_events` or `max_bytes`."""
        self._events.append(event)
        self._bytes += event.size
        while self._events and (len(self._events) > max_events or self._bytes > max_bytes):
            dropped = self._events.popleft()
            self._bytes -= dropped.size
            self.floor = dropped.revision

    def newer_than(self, revision: int, namespaces: frozenset[str]) -> list[Event]:
        """The events of `namespaces` newer than `revision`, oldest first."""
        newer: list[Event] = []
        for event in reversed(self._events):
            if event.revision <= revision:
                break
            if event.namespace in namespaces:
                newer.append(event)
        newer.reverse()
        return newer

    def reset(self, revision: int) -> None:
        """Forget every event: from now on the ring holds those newer than `revision`."""
        self._events.clear()
        self._bytes = 0
        self.floor = revision
