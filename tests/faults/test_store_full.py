"""A full store: etcd over its space quota (the NOSPACE alarm), then a reclaim.

The cluster runs with a small `--quota-backend-bytes` (the services are told it with
`CONFIGSVC_ETCD_QUOTA_BYTES`). With the writer, SDK clients and streams steady, one large
document (a `RateLimits` of some 3,300 randomly named limits, ~400 KB) is rewritten, its
history keeping every version, until etcd refuses for space.
Then, while full: every write answers 507 `store_full` (a definite refusal: the checker
holds the writer to "nothing written"), both instances say `store_full` in `/readyz` (200)
and `/metrics`, reads answer, existing streams stay open, and new streams and a new SDK
client start. `POST /v1/admin/reclaim` then gives the space back and writes resume; the
history trimmed by it is checked as read before the trim.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.faults._scenario import NAMESPACE, Scenario
from tests.faults._services import ServiceInstance
from tests.faults._writer import STORE_FULL, large_spec
from tests.sdk.helpers import wait_until

pytestmark = pytest.mark.timeout(240)

QUOTA_BYTES = 16 * 1024 * 1024
BALLAST_NAMESPACE = "ballast"
BALLAST_DOC = "big"
BALLAST_MAX_WRITES = 200
"""Far more than the quota holds (about 40): a store that never fills fails the test."""
BASELINE_ACKS = 20
ACKS_AFTER = 20
STREAMS_PER_INSTANCE = 10
NEW_STREAMS_PER_INSTANCE = 5
KEEP_VERSIONS = 2
FULL_REFUSALS_PER_INSTANCE = 5
"""507s each instance answers the writer before the full store is looked at."""
FULL_SECONDS = 3.0
"""How long existing streams and clients are watched while the store is full."""
STATE_WITHIN = 20.0
"""Seconds an instance may take to say `store_full`, or `ready` again (its space check
runs every 10 s; a refused or a successful write tells it at once)."""
RECLAIM_TIMEOUT = 60.0


@pytest.fixture
def etcd_quota() -> int:
    return QUOTA_BYTES


def gauges(instance: ServiceInstance) -> dict[str, float]:
    """The `configsvc_store_*` gauges of `/metrics`."""
    text = httpx.get(f"{instance.url}/metrics", timeout=5).text
    found = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name.startswith("configsvc_store_") and "{" not in name and value:
            found[name] = float(value)
    return found


def fill_until_refused(api: httpx.Client) -> tuple[int, int, float]:
    """Rewrite the ballast document until a write answers 507; returns (writes
    acknowledged, their body bytes, when the 507 came)."""
    written = nbytes = 0
    for _ in range(BALLAST_MAX_WRITES):
        body = json.dumps({"kind": "RateLimits", "spec": large_spec(), "message": "ballast"})
        response = api.put(
            f"/v1/configs/{BALLAST_NAMESPACE}/{BALLAST_DOC}",
            content=body,
            headers={"Content-Type": "application/json"},
        )
        if response.status_code == 507:
            assert response.json()["error"]["code"] == "store_full", response.text
            return written, nbytes, time.monotonic()
        assert response.status_code in (200, 201), response.text
        written += 1
        nbytes += len(body)
    raise AssertionError(f"{written} ballast writes ({nbytes} bytes) and no 507")


def test_store_full_then_reclaimed(
    scenario: Scenario, report: Callable[[dict[str, Any]], None]
) -> None:
    a, b = scenario.services
    writer = scenario.start_writer()
    scenario.add_sdk_clients()
    fleet = scenario.add_streams(STREAMS_PER_INSTANCE)
    writer.wait_acks(BASELINE_ACKS, after=time.monotonic())

    with a.client(timeout=30) as api:
        filling_at = time.monotonic()
        ballast_writes, ballast_bytes, refused_at = fill_until_refused(api)

        # Full: every write is refused with 507, through both instances.
        for index in range(len(scenario.services)):
            wait_until(
                lambda i=index: sum(
                    1 for f in writer.log.failures
                    if f.outcome == STORE_FULL and f.instance == i and f.ended > refused_at
                ) >= FULL_REFUSALS_PER_INSTANCE,
                STATE_WITHIN,
                f"507s through instance {index}",
            )  # fmt: skip
        reasons = {f.reason for f in writer.log.failures if f.outcome == STORE_FULL}
        assert reasons == {"507 store_full"}, reasons
        for instance in (a, b):
            wait_until(
                lambda i=instance: i.readiness() == (200, "store_full"),
                STATE_WITHIN,
                f"{instance.name}: /readyz 200 store_full (has {instance.readiness()})",
            )
            metrics = gauges(instance)
            assert metrics["configsvc_store_full"] == 1, metrics
            assert metrics["configsvc_store_quota_bytes"] == QUOTA_BYTES, metrics
            assert metrics["configsvc_store_db_bytes"] > 0, metrics

        # Reads, existing streams, new streams and a new SDK client work meanwhile.
        read_while_full = scenario.read_store()
        listing = api.get(f"/v1/configs/{NAMESPACE}")
        assert listing.status_code == 200, listing.text
        new_fleet = scenario.add_streams(NEW_STREAMS_PER_INSTANCE)  # waits for snapshots
        new_client = scenario.add_sdk_clients(1, urls=[b.url, a.url], label="new-while-full")
        time.sleep(max(0.0, refused_at + FULL_SECONDS - time.monotonic()))
        wait_until(
            lambda: all(o.client.status.mode == "streaming" for o in scenario.observers),
            STATE_WITHIN,
            "every SDK client streaming while the store is full",
        )
        assert all(r.streaming and r.snapshots == 1 for r in fleet.records())
        assert all(r.streaming for r in new_fleet.records())
        held = {d.name: (d.version, d.revision) for d in new_client[0].client.documents().values()}
        assert held == read_while_full.final, (held, read_while_full.final)
        refusals_while_full = writer.log.count(STORE_FULL)

        # Reclaim through the API: writes come back, both instances ready again.
        reclaim_at = time.monotonic()
        reclaimed = api.post(
            "/v1/admin/reclaim", json={"keep_versions": KEEP_VERSIONS}, timeout=RECLAIM_TIMEOUT
        )
        reclaim_s = time.monotonic() - reclaim_at
        assert reclaimed.status_code == 200, reclaimed.text
        answer = reclaimed.json()
    writer.wait_acks(ACKS_AFTER, after=reclaim_at)
    first_ack_after = min(x.acked for x in writer.log.acks if x.acked > reclaim_at)
    for instance in (a, b):
        wait_until(
            lambda i=instance: i.readiness() == (200, "ready"),
            STATE_WITHIN,
            f"{instance.name}: /readyz 200 ready after the reclaim",
        )
        assert gauges(instance)["configsvc_store_full"] == 0
    assert answer["freed_bytes"] > 0, answer

    figures = scenario.finish(read_before=read_while_full)
    report(
        {
            "quota_bytes": QUOTA_BYTES,
            "ballast_writes": ballast_writes,
            "ballast_bytes": ballast_bytes,
            "time_to_first_507_s": round(refused_at - filling_at, 3),
            "refused_507_while_full": refusals_while_full,
            "reclaim_s": round(reclaim_s, 3),
            "reclaim_freed_bytes": answer["freed_bytes"],
            "db_bytes_after": answer["db_bytes"],
            "versions_removed": answer["versions_removed"],
            "first_ack_after_reclaim_s": round(first_ack_after - reclaim_at, 3),
            "write_gap_s": round(writer.log.gap_around(refused_at), 3),
            **figures,
        }
    )
