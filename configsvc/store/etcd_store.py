"""ConfigStore on etcd: every write is one transaction, guarded by compare-and-set.

A write reads the document and its version counter in one transaction, then commits the
document, its history record (metadata and spec under separate keys, so listing history never
reads specs), the version counter and the namespace marker in a second transaction that holds
only if the version counter has not moved since the read. The counter changes on every put
and delete, so two writers can never both succeed from the same read, and versions never
repeat. Unconditional writers retry a lost race; `If-Match` writers get 412. The same read
takes the document's latest rollout: while one is running or paused, a plain write is refused
(409), and starting one moves the version counter, so the two exclude each other.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Callable
from typing import Any

from configsvc.errors import (
    Conflict,
    PayloadTooLarge,
    StoreUnavailable,
)
from configsvc.store.audit import AuditRecord, audit_op, audit_witness
from configsvc.store.etcd_client import (
    EtcdKV,
    delete_op,
    mod_revision_is,
    prefix_end,
    put_op,
    range_op,
)
from configsvc.store.keys import KeyLayout
from configsvc.store.reads import DocumentReads
from configsvc.store.records import (
    Action,
    Document,
    DocumentHead,
    HistoryRecord,
    Listing,
    NewContent,
    WriteResult,
    utc_now,
)
from configsvc.store.rollout_record import RolloutRecord
from configsvc.store.spec_codec import SpecCodec
from configsvc.store.tokens import TokenStore
from configsvc.store.write_state import CurrentState, WriteGuard

MAX_WRITE_BYTES = 1_300_000
"""Largest transaction sent to etcd, well under its 1.5 MiB request limit."""

MAX_WRITE_ATTEMPTS = 64
"""Rounds an unconditional writer retries a lost compare-and-set before answering 503."""


RETRY_PAUSE_MAX = 0.005
"""Upper bound (seconds) of the random pause between compare-and-set rounds."""


class EtcdConfigStore(TokenStore):
    """Documents, history and tokens in etcd, under `KeyLayout.prefix`."""

    def __init__(
        self,
        kv: EtcdKV,
        *,
        history_limit: int,
        layout: KeyLayout | None = None,
        codec: SpecCodec | None = None,
    ) -> None:
        self.kv = kv
        self.layout = layout or KeyLayout()
        self.history_limit = history_limit
        self.codec = codec or SpecCodec()
        self.reads = DocumentReads(kv, self.layout, self.codec)

    async def close(self) -> None:
        await self.kv.close()

    async def revision(self) -> int:
        """The store's current revision; raises `StoreUnavailable` if etcd does not answer."""
        return await self.kv.current_revision()

    # ---- reads -------------------------------------------------------------------------

    async def get(self, ns: str, name: str) -> Document | None:
        return await self.reads.document(ns, name)

    async def list_namespace(self, ns: str) -> Listing:
        """The namespace's documents and its ETag revision, read at one revision."""
        revision, found = await self.reads.namespaces([ns])
        etag_revision, documents = found[ns]
        return Listing(ns, revision, etag_revision, documents)

    async def namespace_etag_revision(self, ns: str) -> int:
        """The namespace marker's revision (0 for a namespace never written)."""
        response = await self.kv.range(self.layout.namespace(ns), keys_only=True)
        return response.kvs[0].mod_revision if response.kvs else 0

    async def namespaces(self) -> list[str]:
        """Namespaces that hold at least one document."""
        root = self.layout.docs_root()
        response = await self.kv.range(root, prefix_end(root), keys_only=True)
        found: set[str] = set()
        for kv in response.kvs:
            parsed = self.layout.parse_doc(kv.key)
            if parsed and parsed[1]:
                found.add(parsed[0])
        return sorted(found)

    async def history(self, ns: str, name: str, limit: int = 0) -> list[HistoryRecord]:
        """History records, newest first; `limit` > 0 caps how many."""
        prefix = self.layout.history_prefix(ns, name)
        response = await self.kv.range(prefix, prefix_end(prefix), limit=limit, descending=True)
        return [
            HistoryRecord.from_stored(ns, name, kv.value, kv.mod_revision) for kv in response.kvs
        ]

    async def version(self, ns: str, name: str, version: int) -> HistoryRecord | None:
        """The history record of `version`, with its spec; None if unknown or trimmed."""
        meta = await self.kv.range(self.layout.history(ns, name, version))
        if not meta.kvs:
            return None
        kv = meta.kvs[0]
        record = HistoryRecord.from_stored(ns, name, kv.value, kv.mod_revision)
        spec_key = self.layout.history_spec(ns, name, version)
        spec = await self.kv.range(spec_key, revision=meta.header.revision)
        opened = self.codec.decode(ns, name, spec.kvs[0].value) if spec.kvs else None
        return dataclasses.replace(record, spec=opened)

    # ---- writes ------------------------------------------------------------------------

    async def read_current(
        self, ns: str, name: str, depends_on: WriteGuard | None = None
    ) -> CurrentState:
        """The document, its version counter and latest rollout (and what `depends_on`
        guards), read at one revision: the keys in one transaction, then the current
        version's spec by its key, pinned at that transaction's revision (its key is known
        only once the document is read; a rollout's candidate may be a later version)."""
        doc_key = self.layout.doc(ns, name)
        version_key = self.layout.version(ns, name)
        ops = [range_op(doc_key), range_op(version_key), range_op(self.layout.rollout(ns, name))]
        if depends_on is not None:
            ops.append(range_op(depends_on.key))
        response = await self.kv.txn([], ops)
        doc_kvs, version_kvs, rollout_kvs = (r.response_range.kvs for r in response.responses[:3])
        rollout = (
            RolloutRecord.from_stored(ns, name, rollout_kvs[0].value, rollout_kvs[0].mod_revision)
            if rollout_kvs
            else None
        )
        dependency_revision = 0
        if depends_on is not None:
            dep_kvs = response.responses[3].response_range.kvs
            dependency_revision = dep_kvs[0].mod_revision if dep_kvs else 0
            depends_on.observe(dep_kvs[0].value if dep_kvs else None, dependency_revision)
        document = None
        if doc_kvs:
            head = DocumentHead.from_stored(ns, name, doc_kvs[0].value, doc_kvs[0].mod_revision)
            (document,) = await self.reads.join([head], response.header.revision)
        last_version = int(version_kvs[0].value) if version_kvs else 0
        guard = version_kvs[0].mod_revision if version_kvs else 0
        rollout_revision = rollout.revision if rollout is not None else 0
        return CurrentState(
            document, last_version, guard, dependency_revision, rollout, rollout_revision
        )

    def _version_ops(
        self, record: HistoryRecord, spec: bytes | None, document_op: Any, origin: str | None
    ) -> list[Any]:
        """The operations that write a new version: its spec (first: followers of the store
        watch see it before the document key of the same revision), its history record, the
        document key (`document_op`), the version counter and the namespace marker, then the
        trimming of versions past the history limit."""
        ns, name, version = record.namespace, record.name, record.version
        ops = []
        if spec is not None:
            ops.append(put_op(self.layout.history_spec(ns, name, version), spec))
        ops += [
            put_op(self.layout.history(ns, name, version), record.stored_value()),
            document_op,
            put_op(self.layout.version(ns, name), str(version).encode()),
            put_op(self.layout.namespace(ns), b""),
            audit_op(
                self.layout,
                AuditRecord(
                    action=record.action.value,
                    target=f"{ns}/{name}",
                    by=record.updated_by,
                    origin=origin,
                    at=record.updated_at,
                    namespace=ns,
                    version=version,
                    message=record.message,
                    details={"kind": record.kind} if record.kind else {},
                ),
            ),
        ]
        oldest_kept = version - self.history_limit + 1
        if oldest_kept > 1:
            for key_of in (self.layout.history, self.layout.history_spec):
                start = key_of(ns, name, 0)
                ops.append(delete_op(start, key_of(ns, name, oldest_kept)))
        return ops

    async def _commit(
        self,
        ns: str,
        name: str,
        current: CurrentState,
        ops: list[Any],
        depends_on: WriteGuard | None = None,
    ) -> int | None:
        """Run `ops` if the document (and what it depends on) has not changed since
        `current`; the new revision or None."""
        size = sum(op.ByteSize() for op in ops)
        if size > MAX_WRITE_BYTES:
            raise PayloadTooLarge(f"the write is {size} bytes, over the {MAX_WRITE_BYTES} limit")
        guards = [mod_revision_is(self.layout.version(ns, name), current.guard_revision)]
        if depends_on is not None:
            guards.append(mod_revision_is(depends_on.key, current.dependency_revision))
            ops = [*ops, *depends_on.ops()]
        response = await self.kv.txn(guards, ops, witness=audit_witness(self.layout, ops))
        if not response.succeeded:
            return None
        if response.responses:  # (not a write etcd applied while answering NOSPACE)
            self.kv.space.writable()
        revision: int = response.header.revision
        return revision

    async def put(
        self,
        ns: str,
        name: str,
        build: Callable[[Document | None], NewContent],
        *,
        author: str,
        action: Action = Action.PUT,
        if_match: int | None = None,
        create_only: bool = False,
        dry_run: bool = False,
        origin: str | None = None,
        depends_on: WriteGuard | None = None,
    ) -> WriteResult:
        """Create or replace a document with what `build` makes of the current one.

        `build` runs against the document as read in each compare-and-set round and may
        raise (e.g. `ValidationFailed`); nothing is written then. A `Action.PUT` whose kind
        and spec equal the stored ones writes nothing (and is answered also while a rollout
        of the document is active; any other write is then refused, 409). `if_match` is the
        revision the caller read (412 when it is not the current one); `create_only` answers
        409 if the document exists. With `dry_run` every check runs and nothing is written.
        `depends_on` is read with the document and must be unchanged when the write commits.
        """
        for _attempt in range(MAX_WRITE_ATTEMPTS):
            current = await self.read_current(ns, name, depends_on)
            document = current.document
            if create_only and document is not None:
                raise Conflict(f"{ns}/{name} exists (If-None-Match: *)")
            current.require_revision(ns, name, if_match)
            content = build(document)
            if (
                action is Action.PUT
                and document is not None
                and document.kind == content.kind
                and document.spec == content.spec
            ):
                return WriteResult(document, created=False, changed=False)
            current.refuse_during_rollout(ns, name)  # equal content wrote nothing: allowed
            new = Document(
                namespace=ns,
                name=name,
                kind=content.kind,
                spec=content.spec,
                version=current.last_version + 1,
                revision=0,
                updated_at=utc_now(),
                updated_by=author,
                message=content.message,
                action=action,
                rolled_back_to=content.rolled_back_to,
            )
            if dry_run:
                return WriteResult(new, created=document is None, changed=True)
            spec = self.codec.encode(ns, name, content.kind, content.spec)
            record = HistoryRecord(
                namespace=ns,
                name=name,
                version=new.version,
                revision=0,
                action=action,
                updated_at=new.updated_at,
                updated_by=author,
                message=content.message,
                kind=content.kind,
                spec=content.spec,
                spec_bytes=len(spec),
                rolled_back_to=content.rolled_back_to,
            )
            document_op = put_op(self.layout.doc(ns, name), new.stored_value())
            ops = self._version_ops(record, spec, document_op, origin)
            revision = await self._commit(ns, name, current, ops, depends_on)
            if revision is not None:
                stored = dataclasses.replace(new, revision=revision)
                return WriteResult(stored, created=document is None, changed=True)
            if if_match is not None or create_only:
                continue  # re-read: the checks above answer 412/409 if the race changed it
            await asyncio.sleep(random.uniform(0, RETRY_PAUSE_MAX))  # noqa: S311 - jitter
        raise StoreUnavailable(f"{ns}/{name}: too many concurrent writers, try again")

    async def delete(
        self,
        ns: str,
        name: str,
        *,
        author: str,
        if_match: int | None = None,
        origin: str | None = None,
    ) -> HistoryRecord:
        """Delete a document; its history stays and its version counter moves on."""
        for _attempt in range(MAX_WRITE_ATTEMPTS):
            current = await self.read_current(ns, name)
            document = current.existing(f"no document {ns}/{name}")
            current.refuse_during_rollout(ns, name)
            current.require_revision(ns, name, if_match)
            record = HistoryRecord(
                namespace=ns,
                name=name,
                version=current.last_version + 1,
                revision=0,
                action=Action.DELETE,
                updated_at=utc_now(),
                updated_by=author,
                message=None,
                kind=document.kind,
                spec=None,
                spec_bytes=0,
            )
            document_op = delete_op(self.layout.doc(ns, name))
            ops = self._version_ops(record, None, document_op, origin)
            revision = await self._commit(ns, name, current, ops)
            if revision is not None:
                return dataclasses.replace(record, revision=revision)
            await asyncio.sleep(random.uniform(0, RETRY_PAUSE_MAX))  # noqa: S311 - jitter
        raise StoreUnavailable(f"{ns}/{name}: too many concurrent writers, try again")
