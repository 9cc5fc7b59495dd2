"""FleetView: the whole fleet as one service instance knows it, in memory.

It is fed, in store revision order, by the store watch (every instance's records and
`Heard` values), and at once by this instance's own writes and the reports it receives.
Pure logic with no I/O: times are epoch milliseconds given by the caller.

Guarantees:

* a record is never replaced by an older one, nor removed by a deletion older than it;
* `seen_ms` of an instance is the latest report of it heard of, here or (through `Heard`
  values) on any other instance, and never earlier than its record's `reported_at`;
* an instance is `due` (silent: its record may be deleted) only once `MISSED_REPORTS` of
  its intervals, plus a grace for `Heard` values still on their way, have passed since
  `seen_ms`, and since `trusted_from_ms` (when the view was last loaded: reports heard
  elsewhere before that may be missing, so nobody is judged silent on what the view missed).
  Each service instance adds its own `jitter_ms` per record, so that usually one acts.
* an open watch stream may stand for its instance's reports (`vouches`) only while a report
  of its own came within `VOUCHED_REPORTS_EVERY` + 1 intervals (the SDK still sends every
  10th): a frozen process whose connection stays open leaves the fleet too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from configsvc_schemas.wire import MISSED_REPORTS, VOUCHED_REPORTS_EVERY

from configsvc.store.fleet import FleetRecord, FleetSnapshot, Heard
from configsvc.store.keys import FLEET_HEARD, FLEET_RECORD, KeyLayout
from configsvc.store.records import dumps
from configsvc.store.watcher import FamilyChange

MS = 1000
FAR_MS = 3600 * MS
"""How far ahead a sweep looks when no member is due sooner."""


def epoch_ms(stamp: str) -> int:
    """An RFC 3339 time as epoch milliseconds."""
    return int(datetime.fromisoformat(stamp).timestamp() * MS)


@dataclass(slots=True)
class Member:
    """One SDK instance of the fleet: its record and when it was last heard of."""

    record: FleetRecord
    content_bytes: bytes
    namespaces: frozenset[str]
    interval_ms: int
    reported_ms: int
    seen_ms: int
    report_heard_ms: int
    """The latest report of its own heard of (`seen_ms` also counts its open stream)."""
    jitter_ms: int
    confirmed: bytes | None = None
    """The digest of the last report body found equal to this record on this instance:
    the same bytes from the same token need no second look."""

    @property
    def instance(self) -> str:
        return self.record.instance

    def reports(self, key: str) -> bool:
        """Whether this instance reports document `key` (applied or rejected)."""
        content = self.record.content
        return key in content["documents"] or key in content["rejected"]


@dataclass
class FleetView:
    """The fleet's records and last-heard times, kept current by the caller."""

    service_id: str
    jitter_ms: int
    grace_ms: int
    """Added to every silence deadline: how late a `Heard` value may arrive."""
    members: dict[str, Member] = field(default_factory=dict)
    heard: dict[str, Heard] = field(default_factory=dict)
    confirmed: dict[bytes, str] = field(default_factory=dict)
    """Report digests found equal to a record here, and whose record."""
    trusted_from_ms: int = 0
    loaded: bool = False
    next_due_ms: int = 0
    """No member is due before this (a lower bound: hearing of one only moves its deadline
    later), so most sweeps look at nothing."""
    _buffered: list[FamilyChange] | None = None

    # -- loading ------------------------------------------------------------------------

    def begin_load(self) -> None:
        """A fresh load is under way: hold changes until `finish_load`."""
        self._buffered = []

    def finish_load(self, snapshot: FleetSnapshot, now_ms: int) -> None:
        """Replace everything with `snapshot`, then apply the held changes newer than it."""
        old = self.members
        self.members = {}
        for record in snapshot.records:
            previous = old.get(record.instance)
            member = self._member(record, previous)
            self.members[record.instance] = member
        self.confirmed = {m.confirmed: i for i, m in self.members.items() if m.confirmed}
        self.heard = {}
        for heard in snapshot.heard:
            self.hear(heard)
        self.trusted_from_ms = now_ms
        self.loaded = True
        self.next_due_ms = 0
        held, self._buffered = self._buffered or [], None
        for change in held:
            if change.revision > snapshot.revision:
                self.apply(change)

    def apply(self, change: FamilyChange) -> None:
        """A change of a fleet key from the store watch."""
        if self._buffered is not None:
            self._buffered.append(change)
            return
        parsed = KeyLayout.split_fleet(change.key)
        if parsed is None:
            return
        part, ident = parsed
        if part == FLEET_RECORD:
            if change.value is None:
                self.remove(ident, change.revision)
            else:
                self.put(FleetRecord.from_stored(change.value, change.revision))
        elif part == FLEET_HEARD:
            if change.value is None:
                self.heard.pop(ident, None)
            else:
                self.hear(Heard.from_stored(change.value, change.revision))

    # -- changes ------------------------------------------------------------------------

    def put(self, record: FleetRecord) -> Member | None:
        """Hold `record` unless an equal or newer one is held; the member, or None."""
        previous = self.members.get(record.instance)
        if previous is not None and previous.record.revision >= record.revision:
            return None
        member = self._member(record, previous)
        self.members[record.instance] = member
        self.next_due_ms = min(self.next_due_ms, self.silent_at(member))
        if previous is not None and previous.confirmed != member.confirmed:
            self._unconfirm(previous)
        return member

    def remove(self, instance: str, revision: int) -> None:
        """The record of `instance` was deleted at `revision`."""
        member = self.members.get(instance)
        if member is not None and member.record.revision < revision:
            del self.members[instance]
            self._unconfirm(member)

    def confirm(self, instance: str, content_bytes: bytes, token: str, digest: bytes) -> None:
        """A report body (`digest`) from `token` was found equal to the record of `instance`."""
        member = self.members.get(instance)
        if member is None or member.content_bytes != content_bytes or member.record.token != token:
            return
        if member.confirmed != digest:
            self._unconfirm(member)
            member.confirmed = digest
            self.confirmed[digest] = instance

    def confirmed_member(self, digest: bytes) -> Member | None:
        """The member whose record a report body of `digest` was found equal to, if any."""
        instance = self.confirmed.get(digest)
        member = self.members.get(instance) if instance is not None else None
        return member if member is not None and member.confirmed == digest else None

    def forget_confirmations(self) -> None:
        """A token changed: look at every report again once."""
        self.confirmed.clear()

    def _unconfirm(self, member: Member) -> None:
        if member.confirmed is not None and self.confirmed.get(member.confirmed) == member.instance:
            del self.confirmed[member.confirmed]

    def hear(self, heard: Heard) -> None:
        """What a service instance heard: advance the last-heard times it names."""
        self.heard[heard.service] = Heard(heard.service, heard.at_ms, {}, heard.revision)
        for instance, ms in heard.seen.items():
            self.note_seen(instance, ms, streamed=instance in heard.streamed)

    def note_seen(self, instance: str, ms: int, *, streamed: bool = False) -> None:
        """`instance` was heard of at `ms`: a report, or (`streamed`) its open stream."""
        member = self.members.get(instance)
        if member is None:
            return
        member.seen_ms = max(member.seen_ms, ms)
        if not streamed:
            member.report_heard_ms = max(member.report_heard_ms, ms)

    def _member(self, record: FleetRecord, previous: Member | None) -> Member:
        content = record.content
        content_bytes = dumps(content)
        reported_ms = epoch_ms(record.reported_at)
        member = Member(
            record=record,
            content_bytes=content_bytes,
            namespaces=frozenset(content["namespaces"]),
            interval_ms=int(float(content["report_interval"]) * MS),
            reported_ms=reported_ms,
            seen_ms=reported_ms,
            report_heard_ms=reported_ms,
            jitter_ms=self._jitter(record.instance),
        )
        if previous is not None:
            member.seen_ms = max(member.seen_ms, previous.seen_ms)
            member.report_heard_ms = max(member.report_heard_ms, previous.report_heard_ms)
            if previous.content_bytes == content_bytes and previous.record.token == record.token:
                member.confirmed = previous.confirmed
        return member

    def _jitter(self, instance: str) -> int:
        if self.jitter_ms <= 0:
            return 0
        digest = hashlib.blake2b(f"{self.service_id}/{instance}".encode(), digest_size=4)
        return int.from_bytes(digest.digest(), "big") % self.jitter_ms

    # -- queries ------------------------------------------------------------------------

    def get(self, instance: str) -> Member | None:
        return self.members.get(instance)

    def silent_at(self, member: Member) -> int:
        """When `member` counts as gone if nothing more is heard of it (epoch ms)."""
        since = max(member.seen_ms, self.trusted_from_ms)
        return since + MISSED_REPORTS * member.interval_ms + self.grace_ms + member.jitter_ms

    def vouches(self, member: Member, now_ms: int) -> bool:
        """Whether an open stream of `member` may stand for its report now: one of its own
        came within `VOUCHED_REPORTS_EVERY` + 1 intervals (and the grace)."""
        since = max(member.report_heard_ms, self.trusted_from_ms)
        limit = (VOUCHED_REPORTS_EVERY + 1) * member.interval_ms + self.grace_ms
        return now_ms - since <= limit

    def due(self, now_ms: int) -> list[Member]:
        """Members silent for too long: their records may be deleted."""
        if not self.loaded or now_ms <= self.next_due_ms:
            return []
        found = []
        upcoming = now_ms + FAR_MS
        for member in self.members.values():
            deadline = self.silent_at(member)
            if now_ms > deadline:
                found.append(member)
            elif deadline < upcoming:
                upcoming = deadline
        self.next_due_ms = now_ms if found else upcoming  # until they go, look every time
        return found

    def stale_heard(self, now_ms: int, stale_ms: int) -> list[Heard]:
        """`Heard` values of other service instances written more than `stale_ms` ago: their
        writers have stopped (a running instance writes whenever it hears anything)."""
        return [
            heard
            for service, heard in self.heard.items()
            if service != self.service_id and now_ms - heard.at_ms > stale_ms
        ]

    def in_namespace(self, namespace: str) -> list[Member]:
        """Members reporting for `namespace`, by instance id."""
        found = [m for m in self.members.values() if namespace in m.namespaces]
        found.sort(key=lambda m: m.instance)
        return found

    def reporting(self, key: str) -> list[Member]:
        """Members reporting document `key` (`ns/name`), applied or rejected."""
        namespace = key.partition("/")[0]
        return [m for m in self.in_namespace(namespace) if m.reports(key)]

    def all(self) -> Iterable[Member]:
        return self.members.values()
