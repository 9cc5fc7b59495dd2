"""API tokens in etcd: one key per token, its secret kept only as a sha256."""

from __future__ import annotations

from configsvc.errors import Conflict, NotFound
from configsvc.store.audit import AuditRecord, audit_op
from configsvc.store.etcd_client import EtcdKV, delete_op, mod_revision_is, prefix_end, put_op
from configsvc.store.keys import KeyLayout
from configsvc.store.records import TokenRecord


class TokenStore:
    """Tokens under `layout.prefix` (a part of `EtcdConfigStore`)."""

    kv: EtcdKV
    layout: KeyLayout

    async def get_token(self, name: str) -> TokenRecord | None:
        response = await self.kv.range(self.layout.token(name))
        return TokenRecord.from_stored(response.kvs[0].value) if response.kvs else None

    async def list_tokens(self) -> list[TokenRecord]:
        root = self.layout.tokens_root()
        response = await self.kv.range(root, prefix_end(root))
        return [TokenRecord.from_stored(kv.value) for kv in response.kvs]

    async def create_token(self, record: TokenRecord, *, origin: str | None = None) -> None:
        """Store a new token; 409 if one of that name exists."""
        key = self.layout.token(record.name)
        logged = AuditRecord(
            action="token.create",
            target=record.name,
            by=record.created_by,
            origin=origin,
            details={
                "role": record.role,
                "namespaces": list(record.namespaces),
                "secrets": record.secrets,
            },
        )
        logged_op = audit_op(self.layout, logged)
        response = await self.kv.txn(
            [mod_revision_is(key, 0)],
            [put_op(key, record.stored_value()), logged_op],
            witness=logged_op,
        )
        if not response.succeeded:
            raise Conflict(f"a token named {record.name!r} exists")

    async def delete_token(self, name: str, *, by: str, origin: str | None = None) -> None:
        """Revoke a token; 404 if there is none of that name."""
        key = self.layout.token(name)
        logged = AuditRecord(action="token.revoke", target=name, by=by, origin=origin)
        absent = mod_revision_is(key, 0)
        response = await self.kv.txn([absent], [], [delete_op(key), audit_op(self.layout, logged)])
        if response.succeeded:
            raise NotFound(f"no token named {name!r}")
