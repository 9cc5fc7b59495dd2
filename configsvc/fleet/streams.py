"""StreamHeartbeats: the open watch streams that stand for their SDK instances' reports.

The fan-out says when a stream naming an instance opens and closes; `due(now_ms)` gives the
(instance, token) pairs whose time to be looked at has come, from a deadline heap, so that a
tick costs the due streams only (about 1 in 30 of them at a 30 s interval), not every open
one. The caller puts each back with `later` when it has looked at it.
"""

from __future__ import annotations

import heapq

StreamKey = tuple[str, str]
"""(instance id, token name): several streams of one instance and token count once."""


class StreamHeartbeats:
    """Open named streams, by (instance, token), each with the time it is next looked at."""

    def __init__(self) -> None:
        self._open: dict[StreamKey, int] = {}
        self._scheduled: set[StreamKey] = set()
        self._heap: list[tuple[int, str, str]] = []

    def __len__(self) -> int:
        return len(self._open)

    def opened(self, instance: str, token: str, now_ms: int) -> None:
        """A stream naming `instance`, opened with `token`: look at it at once."""
        key = (instance, token)
        self._open[key] = self._open.get(key, 0) + 1
        self.later(instance, token, now_ms)

    def closed(self, instance: str, token: str) -> None:
        key = (instance, token)
        count = self._open.get(key, 0)
        if count <= 1:
            self._open.pop(key, None)  # its heap entry is dropped when it comes due
        else:
            self._open[key] = count - 1

    def later(self, instance: str, token: str, at_ms: int) -> None:
        """Look at (instance, token) again at `at_ms` (unless it is already due sooner)."""
        key = (instance, token)
        if key in self._scheduled:
            return
        self._scheduled.add(key)
        heapq.heappush(self._heap, (at_ms, instance, token))

    def due(self, now_ms: int) -> list[StreamKey]:
        """The open (instance, token) pairs due by `now_ms`, taken off the schedule."""
        found: list[StreamKey] = []
        heap = self._heap
        while heap and heap[0][0] <= now_ms:
            _at, instance, token = heapq.heappop(heap)
            key = (instance, token)
            self._scheduled.discard(key)
            if key in self._open:
                found.append(key)
        return found
