"""Unpublished: what this service instance heard since its last `Heard` write.

Each entry is the time an SDK instance was last heard of here, and whether only through its
open watch stream (a report of its own heard in the same window prevails). `take` hands out
up to a byte budget of it for one write; `put_back` returns a write that failed.
"""

from __future__ import annotations

from configsvc.store.fleet import Heard, heard_entry_bytes


class Unpublished:
    """The instances heard of since the last `Heard` write, in the order first heard."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}
        self._streamed: set[str] = set()
        """Those of `_seen` heard of only through their streams."""

    def __bool__(self) -> bool:
        return bool(self._seen)

    def note(self, instance: str, ms: int, *, streamed: bool) -> None:
        if not streamed:
            self._streamed.discard(instance)
        elif instance not in self._seen:
            self._streamed.add(instance)
        self._seen[instance] = ms

    def forget(self, instance: str) -> None:
        self._seen.pop(instance, None)
        self._streamed.discard(instance)

    def take(self, budget: int) -> tuple[dict[str, int], frozenset[str]]:
        """Up to `budget` bytes of a `Heard` value (at least one instance; the rest stays for
        the next write), and which of it was heard of through streams only."""
        seen: dict[str, int] = {}
        streamed: set[str] = set()
        for instance, ms in self._seen.items():
            through_stream = instance in self._streamed
            budget -= heard_entry_bytes(instance, through_stream)
            if budget < 0 and seen:
                break
            seen[instance] = ms
            if through_stream:
                streamed.add(instance)
        if len(seen) == len(self._seen):
            self._seen = {}
        else:
            for instance in seen:
                del self._seen[instance]
        self._streamed -= streamed
        return seen, frozenset(streamed)

    def put_back(self, heard: Heard) -> None:
        """A write of `heard` failed: keep it for the next, unless heard of again since."""
        for instance, ms in heard.seen.items():
            if instance not in self._seen:
                self._seen[instance] = ms
                if instance in heard.streamed:
                    self._streamed.add(instance)
            elif instance not in heard.streamed:  # an unsent report of it prevails
                self._streamed.discard(instance)
