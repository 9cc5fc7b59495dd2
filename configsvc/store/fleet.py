"""The fleet in etcd: SDK instances' records and what each service instance has heard.

    {prefix}flt/i/{instance}   a `FleetRecord`: what the instance applied and rejected, as of
                               its last report that changed anything. A plain key (no lease):
                               it outlives every service instance, so restarts lose nothing.
    {prefix}flt/s/{service}    a `Heard`: the instances that reported to that service instance
                               since its previous write, with when.

Records change only when a report changes something; liveness travels in `Heard` values,
one write per service instance per publish period at most, whatever the fleet's size.
Record writes and deletes are grouped into transactions (each guarded by the record's
`mod_revision`, so a stale view never overwrites a newer record); a group whose guard fails
is retried change by change, so each change gets its own answer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from configsvc.store.etcd_client import EtcdKV, delete_op, mod_revision_is, prefix_end, put_op
from configsvc.store.etcd_store import MAX_WRITE_BYTES
from configsvc.store.keys import FLEET_HEARD, FLEET_RECORD, KeyLayout
from configsvc.store.records import dumps

MAX_TXN_CHANGES = 64
"""Record changes per transaction: with one guard each, well under etcd's default of 128
operations per transaction (`--max-txn-ops`)."""

RECORD_FIELDS = ("instance", "token", "reported_at")
"""What a record adds to the report's content: whose it is, who sent it, when."""


@dataclass(frozen=True, slots=True)
class FleetRecord:
    """An SDK instance as its last changing report described it.

    `content` is the report as normalised by the service (app, labels, sdk, host, pid, mode,
    documents, rejected, namespaces, report_interval); `token` names the token that sent it
    (only that token, or the admin, may change or remove it); `revision` is the key's
    `mod_revision` (0 before it is stored).
    """

    instance: str
    token: str
    content: dict[str, Any]
    reported_at: str
    revision: int = 0

    def stored_value(self) -> bytes:
        return dumps(
            {
                **self.content,
                "instance": self.instance,
                "token": self.token,
                "reported_at": self.reported_at,
            }
        )

    @classmethod
    def from_stored(cls, value: bytes, revision: int) -> FleetRecord:
        data = json.loads(value)
        content = {key: item for key, item in data.items() if key not in RECORD_FIELDS}
        return cls(data["instance"], data["token"], content, data["reported_at"], revision)


@dataclass(frozen=True, slots=True)
class Heard:
    """Which instances reported to service instance `service`, and when (epoch ms), since
    its previous `Heard`; `streamed`: those of them heard of only through their open watch
    stream; `revision` is the key's `mod_revision`."""

    service: str
    at_ms: int
    seen: dict[str, int] = field(default_factory=dict)
    revision: int = 0
    streamed: frozenset[str] = frozenset()

    def stored_value(self) -> bytes:
        # offsets before `at_ms` keep the value short: it travels to every instance
        value: dict[str, Any] = {
            "service": self.service,
            "at": self.at_ms,
            "ago": {instance: self.at_ms - ms for instance, ms in self.seen.items()},
        }
        if self.streamed:
            value["streamed"] = sorted(self.streamed)
        return dumps(value)

    @classmethod
    def from_stored(cls, value: bytes, revision: int) -> Heard:
        data = json.loads(value)
        at_ms = int(data["at"])
        seen = {str(instance): at_ms - int(ago) for instance, ago in data["ago"].items()}
        streamed = frozenset(str(instance) for instance in data.get("streamed", ()))
        return cls(str(data["service"]), at_ms, seen, revision, streamed)


HEARD_ENTRY_OVERHEAD = 16
"""Bytes of a `Heard` value per instance besides its id: quotes, colon, comma and the
offset (in `ago`)."""


def heard_entry_bytes(instance: str, streamed: bool) -> int:
    """At most how many bytes `instance` adds to a `Heard` value (named twice if streamed)."""
    size = len(instance) + HEARD_ENTRY_OVERHEAD
    return 2 * size if streamed else size


@dataclass(frozen=True, slots=True)
class RecordChange:
    """Write a record (`value`, its stored form), or delete the record of `instance` (`value`
    None), if the key is still at `expected` (its `mod_revision`; 0: absent)."""

    instance: str
    value: bytes | None
    expected: int

    @classmethod
    def put(cls, record: FleetRecord, expected: int) -> RecordChange:
        return cls(record.instance, record.stored_value(), expected)

    @classmethod
    def delete(cls, instance: str, expected: int) -> RecordChange:
        return cls(instance, None, expected)


@dataclass(frozen=True, slots=True)
class FleetSnapshot:
    """Every fleet key, read at one store revision."""

    revision: int
    records: list[FleetRecord]
    heard: list[Heard]


class FleetStore:
    """Reads and writes the fleet keys."""

    def __init__(self, kv: EtcdKV, layout: KeyLayout) -> None:
        self._kv = kv
        self._layout = layout

    async def load(self) -> FleetSnapshot:
        """Every record and every `Heard`, at one revision (one range read)."""
        root = self._layout.fleet_root()
        response = await self._kv.range(root, prefix_end(root))
        records: list[FleetRecord] = []
        heard: list[Heard] = []
        for kv in response.kvs:
            parsed = self._layout.parse_fleet(kv.key)
            if parsed is None:
                continue
            part, _ident = parsed
            if part == FLEET_RECORD:
                records.append(FleetRecord.from_stored(kv.value, kv.mod_revision))
            elif part == FLEET_HEARD:
                heard.append(Heard.from_stored(kv.value, kv.mod_revision))
        return FleetSnapshot(response.header.revision, records, heard)

    async def read_record(self, instance: str) -> FleetRecord | None:
        response = await self._kv.range(self._layout.fleet_record(instance))
        if not response.kvs:
            return None
        kv = response.kvs[0]
        return FleetRecord.from_stored(kv.value, kv.mod_revision)

    async def apply(self, changes: Sequence[RecordChange]) -> list[int | None]:
        """Apply `changes`, in transactions of up to `MAX_TXN_CHANGES`; for each, the store
        revision it was applied at, or None when its guard failed (the record had moved on).

        Raises `StoreUnavailable` when etcd does not answer; the outcome of the changes
        not yet answered is then unknown.
        """
        results: list[int | None] = []
        for group in self._groups(changes):
            revision = await self._commit(group)
            if revision is not None:
                results.extend([revision] * len(group))
                continue
            for change in group:  # one guard failed: find out which, each on its own
                results.append(await self._commit([change]))
        return results

    def _groups(self, changes: Sequence[RecordChange]) -> list[list[RecordChange]]:
        groups: list[list[RecordChange]] = []
        size = 0
        for change in changes:
            change_size = len(change.value or b"")
            if (
                not groups
                or len(groups[-1]) >= MAX_TXN_CHANGES
                or size + change_size > (MAX_WRITE_BYTES)
            ):
                groups.append([])
                size = 0
            groups[-1].append(change)
            size += change_size
        return groups

    async def _commit(self, group: Sequence[RecordChange]) -> int | None:
        guards = []
        ops = []
        for change in group:
            key = self._layout.fleet_record(change.instance)
            guards.append(mod_revision_is(key, change.expected))
            if change.value is None:
                ops.append(delete_op(key))
            else:
                ops.append(put_op(key, change.value))
        response = await self._kv.txn(guards, ops)
        if not response.succeeded:
            return None
        revision: int = response.header.revision
        return revision

    async def put_heard(self, heard: Heard) -> int:
        """Store what a service instance heard (replacing its previous `Heard`); the bytes
        written."""
        value = heard.stored_value()
        await self._kv.txn([], [put_op(self._layout.fleet_heard(heard.service), value)])
        return len(value)

    async def delete_heard(self, service: str, expected: int | None = None) -> bool:
        """Remove a service instance's `Heard` (if still at `expected`, when given)."""
        key = self._layout.fleet_heard(service)
        guards = [] if expected is None else [mod_revision_is(key, expected)]
        response = await self._kv.txn(guards, [delete_op(key)])
        return bool(response.succeeded)
