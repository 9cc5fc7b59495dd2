"""The push of rollouts: a transition that moves instances, as one event for every stream.

A transition that moves instances onto the candidate (a start, a step) or back to the base
version (an abort) becomes one `RolloutMove` at the transition's revision: the variant it
moves them to, encoded once (clear and masked, like any event), and the rollout's state
before and after. Each stream resolves it by its own identity: an instance chosen after but
not before (or, for an abort, chosen before) gets the variant; every other stream skips it.
Moves sit in the ring and in the held-back events of streams catching up, in revision order
with every other event, so a stream resumed from the ring ends on its right variant. The
event's revision is the transition's, newer than anything the instance has seen.
"""

from __future__ import annotations

from configsvc.fanout.encoding import EncodedEvent
from configsvc.rollouts.choice import Identity, bucket, matches, threshold
from configsvc.store.rollout_record import RolloutRecord


class RolloutMove:
    """A rollout transition that moves some instances to `event`'s document."""

    __slots__ = ("_after", "_before", "_onto", "_record", "event", "namespace", "revision")

    def __init__(self, record: RolloutRecord, event: EncodedEvent) -> None:
        self._record = record
        self.event = event
        self.revision = record.revision
        self.namespace = record.namespace
        last = record.last
        self._onto = last.action.moves_in
        previous = record.previous
        self._before = _share(previous.state.active, previous.percent) if previous else 0
        self._after = _share(last.state.active, last.percent)

    @property
    def size(self) -> int:
        return self.event.size

    def resolve(self, identity: Identity | None) -> EncodedEvent | None:
        """What the stream of `identity` is sent: the variant if this moves it, else None."""
        if identity is None or not matches(self._record.match_labels, identity.labels):
            return None
        place = bucket(self._record.id, identity.instance)
        was, now = place < self._before, place < self._after
        if self._onto:
            return self.event if now and not was else None
        return self.event if was and not now else None


def _share(active: bool, percent: float) -> int:
    """The buckets chosen in a state at a percent."""
    return threshold(percent) if active else 0


Event = EncodedEvent | RolloutMove
"""What the fan-out writes to streams: an event for all, or a move each stream resolves."""
