"""History bounds: a plan keeps each document's newest versions, drops the oldest first,
never the newest of a document; enforced against a real etcd."""

from __future__ import annotations

from typing import Any

from configsvc.metrics import Metrics
from configsvc.store.etcd_store import EtcdConfigStore
from configsvc.store.records import NewContent
from configsvc.store.trimming import (
    BoundsOptions,
    HistoryBounds,
    StoredVersion,
    plan_trim,
    stored_versions,
)


def doc(name: str, sizes: list[int], first_revision: int) -> list[StoredVersion]:
    return [
        StoredVersion("prod", name, v + 1, first_revision + 10 * v, size)
        for v, size in enumerate(sizes)
    ]


def test_keep_versions_keeps_the_newest_of_each_document() -> None:
    versions = {("prod", "a"): doc("a", [1] * 5, 1), ("prod", "b"): doc("b", [1], 2)}
    plan = plan_trim(versions, keep_versions=2)
    assert plan.keep_from == {("prod", "a"): 4}
    assert plan.versions == 3


def test_bytes_per_document_drops_the_oldest_past_versions() -> None:
    versions = {("prod", "a"): doc("a", [100, 100, 100, 1000], 1)}
    plan = plan_trim(versions, bytes_per_document=150)
    # the newest (1000 bytes) always stays; of the past ones, 150 bytes fit: one
    assert plan.keep_from == {("prod", "a"): 3}
    assert plan.spec_bytes == 200


def test_the_total_bound_drops_the_oldest_across_documents() -> None:
    versions = {
        ("prod", "a"): doc("a", [10, 10, 10], first_revision=1),  # revisions 1, 11, 21
        ("prod", "b"): doc("b", [10, 10, 10], first_revision=5),  # revisions 5, 15, 25
    }
    plan = plan_trim(versions, bytes_total=20)
    # past versions: a1(1) b1(5) a2(11) b2(15): the two oldest go
    assert plan.keep_from == {("prod", "a"): 2, ("prod", "b"): 2}


def test_nothing_to_trim_makes_an_empty_plan() -> None:
    versions = {("prod", "a"): doc("a", [10, 10], 1)}
    assert plan_trim(versions, keep_versions=5, bytes_per_document=100).versions == 0
    assert plan_trim(versions, keep_versions=1).keep_from == {("prod", "a"): 2}


def spec(rps: int, pad: int) -> dict[str, Any]:
    return {"limits": {"c" * pad: {"requests_per_second": rps}}}


async def test_bounds_are_enforced_on_the_store(store: EtcdConfigStore) -> None:
    for rps in range(1, 7):
        await store.put(
            "prod", "a", lambda _c, r=rps: NewContent("RateLimits", spec(r, 1000)), author="t"
        )
    metrics = Metrics()
    bounds = HistoryBounds(
        store.kv,
        store.layout,
        metrics,
        BoundsOptions(bytes_per_document=2500, bytes_total=10**9),
    )
    plan = await bounds.enforce()
    assert plan.versions == 3  # two past versions of ~1 KB fit in 2,500 bytes
    history = await store.history("prod", "a")
    assert [record.version for record in history] == [6, 5, 4]
    assert (await store.version("prod", "a", 3)) is None
    current = await store.get("prod", "a")
    assert current is not None and current.spec == spec(6, 1000)
    left = await stored_versions(store.kv, store.layout)
    assert [v.version for v in left[("prod", "a")]] == [4, 5, 6]
    rendered = metrics.render().decode()
    assert 'configsvc_history_trimmed_versions_total{reason="bytes"} 3.0' in rendered
