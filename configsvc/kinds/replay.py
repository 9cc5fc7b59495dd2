"""Snapshots and replays for watch streams, with the kinds of what they read made known.

A store read for a new stream may be newer than what the store watch has shown this
process; before its documents are encoded (and masked by their kinds), the registry learns
the kinds they have as stored at that read.
"""

from __future__ import annotations

from collections.abc import Sequence

from configsvc.kinds.registry import KindRegistry
from configsvc.store.etcd_client import EtcdKV
from configsvc.store.keys import KeyLayout
from configsvc.store.replay import Change, Replayer, Snapshot
from configsvc.store.spec_codec import SpecCodec


class KindAwareReplayer(Replayer):
    """A `Replayer` whose reads leave the registry knowing every kind they met."""

    def __init__(
        self, kv: EtcdKV, layout: KeyLayout, codec: SpecCodec, registry: KindRegistry
    ) -> None:
        super().__init__(kv, layout, codec)
        self.registry = registry

    async def snapshot(self, namespaces: Sequence[str]) -> Snapshot:
        snapshot = await super().snapshot(namespaces)
        await self.registry.learn({doc.kind for doc in snapshot.documents}, snapshot.revision)
        return snapshot

    async def changes_since(
        self, namespaces: Sequence[str], since: int
    ) -> tuple[int, list[Change]] | None:
        replay = await super().changes_since(namespaces, since)
        if replay is not None:
            revision, changes = replay
            kinds = {change.document.kind for change in changes if change.document is not None}
            await self.registry.learn(kinds, revision)
        return replay
