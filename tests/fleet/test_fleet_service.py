"""FleetService on a real etcd, driven directly: its bounds and its writes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from configsvc_schemas.wire import Role

from configsvc.auth import Principal
from configsvc.errors import StoreUnavailable
from configsvc.fleet.service import FleetOptions, FleetService, body_digest
from configsvc.metrics import Metrics
from configsvc.registry import KindRegistry
from configsvc.store.etcd_store import EtcdConfigStore
from configsvc.store.fleet import FleetStore, heard_entry_bytes
from tests.fleet.helpers import report

ADMIN = Principal("admin", Role.ADMIN, ("*",), True)


async def started(store: EtcdConfigStore, **options: Any) -> FleetService:
    fleet = FleetService(
        FleetStore(store.kv, store.layout),
        store,
        KindRegistry(),
        "admin-token",
        Metrics(),
        FleetOptions(**options),
        service_id="svc-test-1",
    )
    fleet.view.begin_load()
    fleet.view.finish_load(await fleet.store.load(), fleet.clock_ms())
    return fleet


async def take(fleet: FleetService, body: dict[str, Any]) -> None:
    await fleet.receive(ADMIN, body, body_digest(repr(body).encode()))


def written(fleet: FleetService, what: str) -> float:
    text = fleet.metrics.render().decode()
    line = f'configsvc_fleet_store_writes_total{{what="{what}"}} '
    found = [row for row in text.splitlines() if row.startswith(line)]
    return float(found[0].split()[-1]) if found else 0.0


async def test_the_fleet_holds_at_most_max_instances(store: EtcdConfigStore) -> None:
    fleet = await started(store, max_instances=2)
    await take(fleet, report("a-1"))
    await take(fleet, report("b-1"))
    with pytest.raises(StoreUnavailable, match="maximum of 2"):
        await take(fleet, report("c-1"))
    await take(fleet, report("a-1", mode="polling"))  # a known instance may still change
    assert sorted(fleet.view.members) == ["a-1", "b-1"]
    assert (await fleet.store.read_record("c-1")) is None


async def test_a_burst_is_heard_in_several_writes_and_a_change_in_one(
    store: EtcdConfigStore,
) -> None:
    two = 2 * heard_entry_bytes("i-0", streamed=False)
    fleet = await started(store, max_heard_bytes=two, publish_interval=0.05)
    for n in range(5):
        await take(fleet, report(f"i-{n}"))
    assert written(fleet, "record") == 5
    fleet.start()
    try:
        deadline = time.monotonic() + 5
        while written(fleet, "heard") < 3:
            assert time.monotonic() < deadline, "not heard"
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        assert written(fleet, "heard") == 3  # 2 + 2 + 1, then nothing more to say
        await take(fleet, report("i-0"))  # the same again: no record write
        assert written(fleet, "record") == 5
    finally:
        await fleet.stop()
    snapshot = await fleet.store.load()
    assert snapshot.heard == []  # a stopping instance removes what it heard
    assert sorted(r.instance for r in snapshot.records) == [f"i-{n}" for n in range(5)]
