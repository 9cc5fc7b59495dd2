"""Reads for watchers: a snapshot of namespaces, or every change since a revision.

Changes are replayed from the history records, not from etcd's MVCC log, so a resume point
stays replayable across etcd compaction for as long as the history limit keeps its records.
Each read sees the store at one revision (range reads pinned at the first one's revision).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from configsvc.store.etcd_client import EtcdKV, RevisionGone, prefix_end
from configsvc.store.keys import KeyLayout
from configsvc.store.reads import PINNED_READ_ATTEMPTS, DocumentReads
from configsvc.store.records import Action, Document, HistoryRecord
from configsvc.store.rollout_reads import ServedRollout
from configsvc.store.spec_codec import SpecCodec


@dataclass(frozen=True, slots=True)
class Change:
    """One change of a document: the document after a put, or None for a delete."""

    namespace: str
    name: str
    revision: int
    document: Document | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    revision: int
    documents: list[Document]
    rollouts: tuple[ServedRollout, ...] = ()
    """The documents' latest rollouts at `revision` (when the reader asked for them)."""


class Replayer:
    """Snapshots and change replays of namespaces, for watch streams that (re)start.

    Only plain range reads, pinned at one revision: they work while etcd is over its space
    quota, when it refuses every transaction.
    """

    def __init__(self, kv: EtcdKV, layout: KeyLayout, codec: SpecCodec) -> None:
        self.kv = kv
        self.layout = layout
        self.codec = codec
        self.reads = DocumentReads(kv, layout, codec)

    async def snapshot(self, namespaces: Sequence[str]) -> Snapshot:
        """Every document of `namespaces` at the store's current revision."""
        revision, found = await self.reads.namespaces(namespaces)
        return Snapshot(revision, [doc for ns in namespaces for doc in found[ns][1]])

    async def changes_since(
        self, namespaces: Sequence[str], since: int
    ) -> tuple[int, list[Change]] | None:
        """`(revision, changes)`: every change in `(since, revision]`, in revision order.

        None when the history no longer holds all of them (trimmed by the history limit), or
        when a rollout changed in that window; the caller then sends a snapshot instead.
        """
        for attempt in range(PINNED_READ_ATTEMPTS):
            try:
                return await self._changes_since(namespaces, since)
            except RevisionGone:
                if attempt == PINNED_READ_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _changes_since(
        self, namespaces: Sequence[str], since: int
    ) -> tuple[int, list[Change]] | None:
        revision = 0
        records: list[HistoryRecord] = []
        specs: dict[tuple[str, str, int], bytes] = {}
        for ns in namespaces:
            for root in (self.layout.history_root(ns), self.layout.history_spec_root(ns)):
                response = await self.kv.range(
                    root, prefix_end(root), min_mod_revision=since + 1, revision=revision
                )
                revision = revision or response.header.revision
                for kv in response.kvs:
                    name, version = self.layout.parse_history(ns, kv.key)
                    if root == self.layout.history_root(ns):
                        records.append(
                            HistoryRecord.from_stored(ns, name, kv.value, kv.mod_revision)
                        )
                    else:
                        specs[(ns, name, version)] = kv.value
        if any(record.action is Action.ROLLOUT for record in records):
            # A rollout changed in the window: which version each instance should hold
            # depends on who it is, so the stream starts over from a snapshot, which says
            # it for each instance (see `configsvc.fanout.variants`).
            return None
        if not await self._complete(records, revision):
            return None
        changes = []
        for record in sorted(records, key=lambda r: r.revision):
            document = None
            if record.action is not Action.DELETE:
                spec = specs.get((record.namespace, record.name, record.version))
                if spec is None:
                    return None
                document = Document(
                    namespace=record.namespace,
                    name=record.name,
                    kind=record.kind or "",
                    spec=self.codec.decode(record.namespace, record.name, spec),
                    version=record.version,
                    revision=record.revision,
                    updated_at=record.updated_at,
                    updated_by=record.updated_by,
                    message=record.message,
                    action=record.action,
                    rolled_back_to=record.rolled_back_to,
                )
            changes.append(Change(record.namespace, record.name, record.revision, document))
        return revision, changes

    async def _complete(self, records: list[HistoryRecord], revision: int) -> bool:
        """True when no record older than the first replayed one was trimmed away.

        Trimming removes the oldest versions first, so if version v-1 of a document is still
        there (or v is 1), every version from v on is there too.
        """
        first: dict[tuple[str, str], int] = {}
        for record in records:
            key = (record.namespace, record.name)
            first[key] = min(first.get(key, record.version), record.version)
        wanted = [(ns, name, v - 1) for (ns, name), v in first.items() if v > 1]
        found = await asyncio.gather(
            *(
                self.kv.range(self.layout.history(ns, name, v), keys_only=True, revision=revision)
                for ns, name, v in wanted
            )
        )
        return all(response.kvs for response in found)
