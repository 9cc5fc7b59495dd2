"""Reads for watchers: a snapshot of namespaces, or every change since a revision.

Changes are replayed from the history records, not from etcd's MVCC log, so a resume point
stays replayable across etcd compaction for as long as the history limit keeps its records.
Each read is one etcd transaction, so it sees the store at one revision.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from configsvc.store.etcd_client import EtcdKV, prefix_end, range_op
from configsvc.store.keys import KeyLayout
from configsvc.store.records import Action, Document, HistoryRecord


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


class Replayer:
    """Snapshots and change replays of namespaces, for watch streams that (re)start."""

    def __init__(self, kv: EtcdKV, layout: KeyLayout) -> None:
        self.kv = kv
        self.layout = layout

    async def snapshot(self, namespaces: Sequence[str]) -> Snapshot:
        """Every document of `namespaces` at the store's current revision."""
        ops = []
        for ns in namespaces:
            prefix = self.layout.namespace(ns)
            ops.append(range_op(prefix, prefix_end(prefix)))
        response = await self.kv.txn([], ops)
        documents: list[Document] = []
        for ns, op_response in zip(namespaces, response.responses, strict=True):
            prefix_length = len(self.layout.namespace(ns))
            for kv in op_response.response_range.kvs:
                name = kv.key[prefix_length:].decode()
                if name:  # the namespace marker has an empty name
                    documents.append(Document.from_stored(ns, name, kv.value, kv.mod_revision))
        return Snapshot(response.header.revision, documents)

    async def changes_since(
        self, namespaces: Sequence[str], since: int
    ) -> tuple[int, list[Change]] | None:
        """`(revision, changes)`: every change in `(since, revision]`, in revision order.

        None when the history no longer holds all of them (trimmed by the history limit);
        the caller then sends a snapshot instead.
        """
        ops = []
        for ns in namespaces:
            for root in (self.layout.history_root(ns), self.layout.history_spec_root(ns)):
                ops.append(range_op(root, prefix_end(root), min_mod_revision=since + 1))
        response = await self.kv.txn([], ops)
        revision: int = response.header.revision
        records: list[HistoryRecord] = []
        specs: dict[tuple[str, str, int], bytes] = {}
        for index, ns in enumerate(namespaces):
            meta = response.responses[2 * index].response_range.kvs
            spec = response.responses[2 * index + 1].response_range.kvs
            for kv in meta:
                name, version = self.layout.parse_history(ns, kv.key)
                records.append(HistoryRecord.from_stored(ns, name, kv.value, kv.mod_revision))
            for kv in spec:
                name, version = self.layout.parse_history(ns, kv.key)
                specs[(ns, name, version)] = kv.value
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
                    spec=json.loads(spec),
                    version=record.version,
                    revision=record.revision,
                    updated_at=record.updated_at,
                    updated_by=record.updated_by,
                    message=record.message,
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
        if not wanted:
            return True
        ops = [range_op(self.layout.history(ns, name, v)) for ns, name, v in wanted]
        response = await self.kv.txn([], ops)
        return all(op.response_range.kvs for op in response.responses)
