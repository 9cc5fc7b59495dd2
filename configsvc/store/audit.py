"""The audit log: every change to the store, with who, when, what and from where.

Each record is written in the same transaction as the change it describes (a document
write, a token created or revoked, …), so the log holds exactly the changes that happened.
Keys sort by time (`{prefix}audit/{RFC 3339 time}-{random}`), so a read from a moment on
is one range read. Records hold no spec and no secret: what changed is named, with its
version, and the document's history has the rest.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from configsvc.store.etcd_client import EtcdKV, prefix_end, put_op
from configsvc.store.keys import KeyLayout
from configsvc.store.records import dumps, utc_now

MAX_AUDIT_READ = 10_000
"""Records one read returns at most."""


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One change: `action` on `target` (e.g. `put` of `prod/chat-models`)."""

    action: str
    target: str
    by: str
    origin: str | None = None
    """The client's address as the service saw it."""
    at: str = field(default_factory=utc_now)
    namespace: str | None = None
    version: int | None = None
    message: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "by": self.by,
            "origin": self.origin,
            "action": self.action,
            "target": self.target,
            "namespace": self.namespace,
            "version": self.version,
            "message": self.message,
            "details": self.details,
        }

    @classmethod
    def from_stored(cls, value: bytes) -> AuditRecord:
        data = json.loads(value)
        return cls(
            action=data["action"],
            target=data["target"],
            by=data["by"],
            origin=data.get("origin"),
            at=data["at"],
            namespace=data.get("namespace"),
            version=data.get("version"),
            message=data.get("message"),
            details=data.get("details") or {},
        )


def audit_op(layout: KeyLayout, record: AuditRecord) -> Any:
    """The transaction operation that logs `record`."""
    key = layout.audit(f"{record.at}-{secrets.token_hex(4)}")
    return put_op(key, dumps(record.to_json()))


def audit_witness(layout: KeyLayout, ops: list[Any]) -> Any | None:
    """The audit record's put among a transaction's `ops` (a key no other write makes:
    the witness that tells whether a transaction etcd answered NOSPACE was applied)."""
    root = layout.audit("")
    return next(
        (op for op in ops if op.HasField("request_put") and op.request_put.key.startswith(root)),
        None,
    )


async def read_audit(
    kv: EtcdKV, layout: KeyLayout, since: str = "", limit: int = MAX_AUDIT_READ
) -> list[AuditRecord]:
    """Records from `since` (an RFC 3339 UTC time, or everything), oldest first."""
    root = layout.audit("")
    response = await kv.range(layout.audit(since), prefix_end(root), limit=limit)
    return [AuditRecord.from_stored(item.value) for item in response.kvs]


async def forget_audit_before(kv: EtcdKV, layout: KeyLayout, before: str) -> int:
    """Forget records older than `before` (an RFC 3339 UTC time); returns how many."""
    return await kv.delete_range(layout.audit(""), layout.audit(before))
