"""User-defined kinds in etcd: the current record, its history, and guarded changes.

A kind is one key (`KeyLayout.kind`): its schema, description and version, or once deleted
a tombstone that keeps the version counter and the secret paths. Every version gets a
history record (who, when, message, action) and, for puts, the schema it had.

A change of a kind reads the kind, its use marker and every document in one transaction,
lets the caller check the documents of that kind (compatibility, or "in use"), and commits
only if neither the kind nor its use marker moved since: a document of that kind written
meanwhile touches the marker (see `KindGuard`), so the check runs again with it. A write
of a document reads the kind in its own transaction and requires it unchanged when it
commits, so each document write is decided by the kind as stored at that moment.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from configsvc_schemas.secrets import SecretPath, secret_paths

from configsvc.errors import NotFound, StoreUnavailable
from configsvc.store.audit import AuditRecord, audit_op, audit_witness
from configsvc.store.etcd_client import (
    EtcdKV,
    delete_op,
    mod_revision_is,
    prefix_end,
    put_op,
    range_op,
)
from configsvc.store.etcd_store import MAX_WRITE_ATTEMPTS, RETRY_PAUSE_MAX
from configsvc.store.keys import KeyLayout
from configsvc.store.reads import DocumentReads
from configsvc.store.records import Action, Document, DocumentHead, utc_now

DocumentsCheck = Callable[["KindRecord | None", list[Document]], Awaitable[None] | None]
"""Checks the stored documents of a kind before it changes (awaited when it returns an
awaitable); raises to refuse the change."""


def _dumps(value: Any) -> bytes:
    """Compact JSON that keeps key order (a schema is returned as it was given)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True, slots=True)
class KindRecord:
    """A user kind as stored; `schema` is None once the kind is deleted (a tombstone)."""

    name: str
    version: int
    schema: dict[str, Any] | None
    description: str | None
    secrets: tuple[SecretPath, ...]
    """Every place any version of the kind marked secret: a value once stored as a secret
    stays masked, in the history too, whatever later versions say."""
    updated_at: str
    updated_by: str
    message: str | None = None
    revision: int = 0

    @property
    def deleted(self) -> bool:
        return self.schema is None

    def stored_value(self) -> bytes:
        return _dumps(
            {
                "version": self.version,
                "schema": self.schema,
                "description": self.description,
                "secrets": [list(path) for path in self.secrets],
                "updated_at": self.updated_at,
                "updated_by": self.updated_by,
                "message": self.message,
            }
        )

    @classmethod
    def from_stored(cls, name: str, value: bytes, revision: int) -> KindRecord:
        data = json.loads(value)
        return cls(
            name=name,
            version=data["version"],
            schema=data.get("schema"),
            description=data.get("description"),
            secrets=tuple(tuple(path) for path in data.get("secrets", [])),
            updated_at=data["updated_at"],
            updated_by=data["updated_by"],
            message=data.get("message"),
            revision=revision,
        )

    def summary(self) -> dict[str, Any]:
        """The metadata of the REST API (no schema)."""
        return {
            "version": self.version,
            "revision": self.revision,
            "updated_at": self.updated_at,
            "updated_by": self.updated_by,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class KindHistoryRecord:
    """One version of a kind: a put (with its schema when asked for) or a delete."""

    name: str
    version: int
    revision: int
    action: Action
    updated_at: str
    updated_by: str
    message: str | None
    description: str | None
    schema: dict[str, Any] | None = None

    def stored_value(self) -> bytes:
        return _dumps(
            {
                "version": self.version,
                "action": self.action.value,
                "updated_at": self.updated_at,
                "updated_by": self.updated_by,
                "message": self.message,
                "description": self.description,
            }
        )

    @classmethod
    def from_stored(cls, name: str, value: bytes, revision: int) -> KindHistoryRecord:
        data = json.loads(value)
        return cls(
            name=name,
            version=data["version"],
            revision=revision,
            action=Action(data["action"]),
            updated_at=data["updated_at"],
            updated_by=data["updated_by"],
            message=data.get("message"),
            description=data.get("description"),
        )

    def summary(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "revision": self.revision,
            "updated_at": self.updated_at,
            "updated_by": self.updated_by,
            "message": self.message,
            "action": self.action.value,
        }


@dataclass(frozen=True, slots=True)
class KindWriteResult:
    """What a put of a kind did: `created` it (also over a tombstone), `changed` it, or
    neither (the same schema and description: nothing written, the version kept)."""

    record: KindRecord
    created: bool
    changed: bool


@dataclass(frozen=True, slots=True)
class _Read:
    record: KindRecord | None
    kind_revision: int
    use_revision: int
    documents: list[Document]


class KindStore:
    """User kinds in etcd, under `KeyLayout.prefix`."""

    def __init__(
        self, kv: EtcdKV, layout: KeyLayout, *, history_limit: int, reads: DocumentReads
    ) -> None:
        self.kv = kv
        self.layout = layout
        self.history_limit = history_limit
        self.reads = reads

    # ---- reads -------------------------------------------------------------------------

    async def get(self, name: str) -> KindRecord | None:
        """The kind's record (a tombstone once deleted), or None if it never existed."""
        found = await self.read([name])
        return found.get(name)

    async def read(self, names: Sequence[str]) -> dict[str, KindRecord]:
        """The records of `names` that exist (tombstones included), read at one revision."""
        if not names:
            return {}
        response = await self.kv.txn([], [range_op(self.layout.kind(name)) for name in names])
        found = {}
        for name, op in zip(names, response.responses, strict=True):
            kvs = op.response_range.kvs
            if kvs:
                found[name] = KindRecord.from_stored(name, kvs[0].value, kvs[0].mod_revision)
        return found

    async def read_all(self) -> list[KindRecord]:
        """Every kind's record, tombstones included, sorted by name."""
        root = self.layout.kinds_root()
        response = await self.kv.range(root, prefix_end(root))
        return [
            KindRecord.from_stored(kv.key[len(root) :].decode(), kv.value, kv.mod_revision)
            for kv in response.kvs
        ]

    async def history(self, name: str, limit: int = 0) -> list[KindHistoryRecord]:
        """The kind's versions, newest first; `limit` > 0 caps how many."""
        prefix = self.layout.kind_history_prefix(name)
        response = await self.kv.range(prefix, prefix_end(prefix), limit=limit, descending=True)
        return [
            KindHistoryRecord.from_stored(name, kv.value, kv.mod_revision) for kv in response.kvs
        ]

    async def version(self, name: str, version: int) -> KindHistoryRecord | None:
        """Version `version` of the kind with its schema; None if unknown or trimmed."""
        meta_key = self.layout.kind_history(name, version)
        schema_key = self.layout.kind_schema(name, version)
        response = await self.kv.txn([], [range_op(meta_key), range_op(schema_key)])
        meta = response.responses[0].response_range.kvs
        if not meta:
            return None
        record = KindHistoryRecord.from_stored(name, meta[0].value, meta[0].mod_revision)
        schema = response.responses[1].response_range.kvs
        return replace(record, schema=json.loads(schema[0].value) if schema else None)

    async def documents_of(self, name: str) -> list[Document]:
        """Every stored document of kind `name`."""
        return (await self._read(name)).documents

    # ---- writes ------------------------------------------------------------------------

    async def put(
        self,
        name: str,
        schema: dict[str, Any],
        *,
        description: str | None,
        message: str | None,
        author: str,
        check: DocumentsCheck,
        dry_run: bool = False,
        origin: str | None = None,
    ) -> KindWriteResult:
        """Create or replace kind `name`, once `check(current, documents of the kind)` has
        passed (it raises to refuse). A put equal to the stored kind writes nothing."""
        for _attempt in range(MAX_WRITE_ATTEMPTS):
            read = await self._read(name)
            current = read.record
            live = current if current is not None and not current.deleted else None
            if live is not None and live.schema == schema and live.description == description:
                return KindWriteResult(live, created=False, changed=False)
            pending = check(live, read.documents)
            if pending is not None:
                await pending
            kept: set[SecretPath] = set(current.secrets) if current else set()
            record = KindRecord(
                name=name,
                version=(current.version if current else 0) + 1,
                schema=schema,
                description=description,
                secrets=tuple(sorted(kept | set(secret_paths(schema)))),
                updated_at=utc_now(),
                updated_by=author,
                message=message,
            )
            if dry_run:
                return KindWriteResult(record, created=live is None, changed=True)
            revision = await self._commit(read, record, Action.PUT, origin)
            if revision is not None:
                stored = replace(record, revision=revision)
                return KindWriteResult(stored, created=live is None, changed=True)
            await asyncio.sleep(random.uniform(0, RETRY_PAUSE_MAX))  # noqa: S311 - jitter
        raise StoreUnavailable(f"kind {name}: too many concurrent writers, try again")

    async def delete(
        self,
        name: str,
        *,
        author: str,
        message: str | None,
        check: DocumentsCheck,
        origin: str | None = None,
    ) -> KindRecord:
        """Delete kind `name` (a tombstone stays) once `check` has passed; 404 if unknown."""
        for _attempt in range(MAX_WRITE_ATTEMPTS):
            read = await self._read(name)
            current = read.record
            if current is None or current.deleted:
                raise NotFound(f"no kind {name!r}")
            pending = check(current, read.documents)
            if pending is not None:
                await pending
            tombstone = replace(
                current,
                version=current.version + 1,
                schema=None,
                updated_at=utc_now(),
                updated_by=author,
                message=message,
            )
            revision = await self._commit(read, tombstone, Action.DELETE, origin)
            if revision is not None:
                return replace(tombstone, revision=revision)
            await asyncio.sleep(random.uniform(0, RETRY_PAUSE_MAX))  # noqa: S311 - jitter
        raise StoreUnavailable(f"kind {name}: too many concurrent writers, try again")

    async def _read(self, name: str) -> _Read:
        """The kind, its use marker and its documents, at one revision."""
        root = self.layout.docs_root()
        ops = [
            range_op(self.layout.kind(name)),
            range_op(self.layout.kind_use(name)),
            range_op(root, prefix_end(root)),
        ]
        response = await self.kv.txn([], ops)
        kind_kvs, use_kvs, doc_kvs = (op.response_range.kvs for op in response.responses)
        record = (
            KindRecord.from_stored(name, kind_kvs[0].value, kind_kvs[0].mod_revision)
            if kind_kvs
            else None
        )
        marker = b'"kind":' + json.dumps(name).encode()
        heads = []
        for kv in doc_kvs:
            if marker not in kv.value:  # most documents: no JSON parsing
                continue
            parsed = self.layout.parse_doc(kv.key)
            if parsed is None or not parsed[1]:
                continue
            head = DocumentHead.from_stored(parsed[0], parsed[1], kv.value, kv.mod_revision)
            if head.kind == name:
                heads.append(head)
        documents = await self.reads.join(heads, response.header.revision)
        return _Read(
            record,
            kind_kvs[0].mod_revision if kind_kvs else 0,
            use_kvs[0].mod_revision if use_kvs else 0,
            documents,
        )

    async def _commit(
        self, read: _Read, record: KindRecord, action: Action, origin: str | None
    ) -> int | None:
        """Store `record` and its history if neither the kind nor its use moved since `read`."""
        name, version = record.name, record.version
        history = KindHistoryRecord(
            name=name,
            version=version,
            revision=0,
            action=action,
            updated_at=record.updated_at,
            updated_by=record.updated_by,
            message=record.message,
            description=record.description,
        )
        logged = AuditRecord(
            action=f"kind.{action.value}",
            target=name,
            by=record.updated_by,
            origin=origin,
            at=record.updated_at,
            version=version,
            message=record.message,
        )
        ops = [
            put_op(self.layout.kind(name), record.stored_value()),
            put_op(self.layout.kind_history(name, version), history.stored_value()),
            audit_op(self.layout, logged),
        ]
        if record.schema is not None:
            ops.append(put_op(self.layout.kind_schema(name, version), _dumps(record.schema)))
        oldest_kept = version - self.history_limit + 1
        if oldest_kept > 1:
            for key_of in (self.layout.kind_history, self.layout.kind_schema):
                ops.append(delete_op(key_of(name, 0), key_of(name, oldest_kept)))
        guards = [
            mod_revision_is(self.layout.kind(name), read.kind_revision),
            mod_revision_is(self.layout.kind_use(name), read.use_revision),
        ]
        response = await self.kv.txn(guards, ops, witness=audit_witness(self.layout, ops))
        if not response.succeeded:
            return None
        revision: int = response.header.revision
        return revision
