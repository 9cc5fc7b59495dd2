"""Console sessions in etcd, under `{prefix}sess/` (see `KeyLayout`).

A session record says which token a browser signed in with (its name and the sha256 of the
token, never the token) and until when. It is keyed by the sha256 of the session id, so that
reading etcd does not give anyone a usable cookie. Every service instance reads the same
records: a session signed in on one instance works on all of them, and a sign-out on one
ends it on all of them at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from configsvc.store.etcd_client import EtcdKV, delete_op, prefix_end, put_op
from configsvc.store.keys import KeyLayout
from configsvc.store.records import dumps

MAX_OPS_PER_TXN = 100
"""Deletes sent in one etcd transaction (etcd allows 128 operations by default)."""


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A console session as stored."""

    token_name: str
    token_sha256: str
    created_at: float
    """Unix seconds."""
    expires_at: float
    """Unix seconds; the session is refused from then on."""

    def stored_value(self) -> bytes:
        return dumps(
            {
                "token_name": self.token_name,
                "token_sha256": self.token_sha256,
                "created_at": self.created_at,
                "expires_at": self.expires_at,
            }
        )

    @classmethod
    def from_stored(cls, value: bytes) -> SessionRecord | None:
        """The record in `value`; None for a value this version cannot read (treated as no
        session: the browser signs in again)."""
        try:
            data: Any = json.loads(value)
            return cls(
                token_name=str(data["token_name"]),
                token_sha256=str(data["token_sha256"]),
                created_at=float(data["created_at"]),
                expires_at=float(data["expires_at"]),
            )
        except (ValueError, KeyError, TypeError):
            return None


class SessionStore:
    """Create, read and delete session records; sweep the expired ones."""

    def __init__(self, kv: EtcdKV, layout: KeyLayout) -> None:
        self._kv = kv
        self._layout = layout

    async def create(self, key: str, record: SessionRecord) -> None:
        await self._kv.txn([], [put_op(self._layout.session(key), record.stored_value())])

    async def get(self, key: str) -> SessionRecord | None:
        response = await self._kv.range(self._layout.session(key))
        return SessionRecord.from_stored(response.kvs[0].value) if response.kvs else None

    async def delete(self, key: str) -> None:
        await self._kv.txn([], [delete_op(self._layout.session(key))])

    async def delete_expired(self, now: float) -> int:
        """Delete every record that expired at or before `now` (or cannot be read); returns
        how many were deleted."""
        root = self._layout.sessions_root()
        response = await self._kv.range(root, prefix_end(root))
        stale = [
            kv.key
            for kv in response.kvs
            if (record := SessionRecord.from_stored(kv.value)) is None or record.expires_at <= now
        ]
        for start in range(0, len(stale), MAX_OPS_PER_TXN):
            batch = stale[start : start + MAX_OPS_PER_TXN]
            await self._kv.txn([], [delete_op(key) for key in batch])
        return len(stale)
