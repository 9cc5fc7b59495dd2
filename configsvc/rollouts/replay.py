"""Snapshots for watch streams, with the rollouts of their namespaces at the same revision."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from configsvc.kinds.registry import KindRegistry
from configsvc.kinds.replay import KindAwareReplayer
from configsvc.store.etcd_client import EtcdKV
from configsvc.store.keys import KeyLayout
from configsvc.store.replay import Snapshot
from configsvc.store.rollout_reads import RolloutReads, served_rollouts
from configsvc.store.spec_codec import SpecCodec


class RolloutAwareReplayer(KindAwareReplayer):
    """A `KindAwareReplayer` whose snapshots also hold the namespaces' latest rollouts (read
    at the snapshot's revision), so that each stream is sent the snapshot it should get."""

    def __init__(
        self,
        kv: EtcdKV,
        layout: KeyLayout,
        codec: SpecCodec,
        registry: KindRegistry,
        rollouts: RolloutReads,
    ) -> None:
        super().__init__(kv, layout, codec, registry)
        self.rollouts = rollouts

    async def snapshot(self, namespaces: Sequence[str]) -> Snapshot:
        snapshot = await super().snapshot(namespaces)
        served = await served_rollouts(self.rollouts, namespaces, snapshot.revision)
        kinds = {s.candidate.kind for s in served if s.candidate is not None}
        await self.registry.learn(kinds, snapshot.revision)
        return dataclasses.replace(snapshot, rollouts=tuple(served))
