"""Reading rollouts: the latest one of a document or of a namespace's documents, and their
candidates as the instances chosen for them get them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from configsvc.errors import NotFound
from configsvc.store.etcd_client import EtcdKV, prefix_end
from configsvc.store.keys import KeyLayout
from configsvc.store.records import Document
from configsvc.store.rollout_record import RolloutRecord
from configsvc.store.spec_codec import SpecCodec


class RolloutReads:
    """Reads of the rollouts under `layout.prefix` (plain range reads, which etcd answers
    while it is over its space quota)."""

    def __init__(self, kv: EtcdKV, layout: KeyLayout, codec: SpecCodec) -> None:
        self.kv = kv
        self.layout = layout
        self.codec = codec

    async def get(self, ns: str, name: str) -> RolloutRecord | None:
        """The document's latest rollout, in any state; None if it never had one."""
        response = await self.kv.range(self.layout.rollout(ns, name))
        if not response.kvs:
            return None
        kv = response.kvs[0]
        return RolloutRecord.from_stored(ns, name, kv.value, kv.mod_revision)

    async def all(self) -> tuple[int, list[RolloutRecord]]:
        """`(revision, records)`: every document's latest rollout, read at one revision."""
        root = self.layout.rollouts_root()
        response = await self.kv.range(root, prefix_end(root))
        return response.header.revision, [self._parse(root, kv) for kv in response.kvs]

    async def in_namespace(self, ns: str, revision: int = 0) -> list[RolloutRecord]:
        """The latest rollouts of the namespace's documents, as of `revision` (0: now)."""
        root = self.layout.rollout_namespace(ns)
        response = await self.kv.range(root, prefix_end(root), revision=revision)
        return [self._parse(self.layout.rollouts_root(), kv) for kv in response.kvs]

    async def namespace_revision(self, ns: str, revision: int = 0) -> int:
        """The newest revision of any rollout record of the namespace (0: none)."""
        root = self.layout.rollout_namespace(ns)
        response = await self.kv.range(root, prefix_end(root), keys_only=True, revision=revision)
        return max((kv.mod_revision for kv in response.kvs), default=0)

    async def candidate(self, record: RolloutRecord, revision: int = 0) -> Document:
        """The candidate of `record` as a document, its spec read as of `revision`; its
        `revision` is the record's (the revision of the transition that offered it)."""
        key = self.layout.history_spec(record.namespace, record.name, record.version)
        response = await self.kv.range(key, revision=revision)
        if not response.kvs:
            raise NotFound(f"{record.key}: the candidate version {record.version} has no spec")
        spec = self.codec.decode(record.namespace, record.name, response.kvs[0].value)
        return candidate_document(record, spec)

    def _parse(self, root: bytes, kv: Any) -> RolloutRecord:
        ns, _, name = kv.key[len(root) :].decode().partition("/")
        return RolloutRecord.from_stored(ns, name, kv.value, kv.mod_revision)


@dataclass(frozen=True, slots=True)
class ServedRollout:
    """A document's latest rollout as of a read, with its candidate while it is active."""

    record: RolloutRecord
    candidate: Document | None


async def served_rollouts(
    store: RolloutReads, namespaces: Sequence[str], revision: int
) -> list[ServedRollout]:
    """The latest rollouts of `namespaces`' documents as of `revision`, with the candidates
    of the active ones."""
    served = []
    for ns in namespaces:
        for record in await store.in_namespace(ns, revision):
            active = record.state.active
            candidate = await store.candidate(record, revision) if active else None
            served.append(ServedRollout(record, candidate))
    return served


def candidate_document(record: RolloutRecord, spec: dict[str, Any]) -> Document:
    """The candidate as the instances chosen for it get it: its own version and metadata,
    at the revision of the record (the transition that offered it to them)."""
    return Document(
        namespace=record.namespace,
        name=record.name,
        kind=record.kind,
        spec=spec,
        version=record.version,
        revision=record.revision,
        updated_at=record.created_at,
        updated_by=record.created_by,
        message=record.message,
        rollout=record.id,
    )


def base_document(record: RolloutRecord, spec: dict[str, Any]) -> Document:
    """The version the rollout started over, at the revision of the record."""
    base = record.base
    return Document(
        namespace=record.namespace,
        name=record.name,
        kind=base.kind,
        spec=spec,
        version=base.version,
        revision=record.revision,
        updated_at=base.updated_at,
        updated_by=base.updated_by,
        message=base.message,
    )
