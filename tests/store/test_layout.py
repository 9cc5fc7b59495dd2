"""How specs are stored: once per version, and data of the earlier layout (each current
spec also inside its document key) migrated in place, with nothing a reader sees changed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from support import RunningService, SseReader

from configsvc.embedded.process import EtcdProcess
from configsvc.store.etcd_client import EtcdKV, prefix_end, put_op
from configsvc.store.etcd_store import EtcdConfigStore
from configsvc.store.keys import KeyLayout
from configsvc.store.migrate import LAYOUT, NewerLayout, migrate
from configsvc.store.records import NewContent, dumps

LAYOUT_KEYS = KeyLayout()


def spec(rps: float, pad: int = 0) -> dict[str, Any]:
    return {"limits": {"chat" + "x" * pad: {"requests_per_second": rps}}}


async def values(kv: EtcdKV, family: str) -> dict[str, bytes]:
    root = f"{LAYOUT_KEYS.prefix}{family}/".encode()
    response = await kv.range(root, prefix_end(root))
    return {kv_.key.decode(): kv_.value for kv_ in response.kvs}


async def test_a_version_s_spec_is_stored_once(store: EtcdConfigStore) -> None:
    for rps in (1, 2):
        await store.put(
            "prod",
            "limits",
            lambda _c, r=rps: NewContent("RateLimits", spec(r, 100_000)),
            author="t",
        )
    docs = await values(store.kv, "doc")
    specs = await values(store.kv, "hspec")
    assert all(len(value) < 500 for value in docs.values()), "a document key holds a spec"
    assert len(specs) == 2 and all(len(value) > 100_000 for value in specs.values())
    got = await store.get("prod", "limits")
    assert got is not None and got.spec == spec(2, 100_000) and got.version == 2
    listing = await store.list_namespace("prod")
    assert [doc.spec for doc in listing.items] == [spec(2, 100_000)]


def legacy_document(version: int, rps: float) -> bytes:
    """A document key as releases up to 0.1 wrote it: metadata and spec together."""
    return dumps(
        {
            "kind": "RateLimits",
            "spec": spec(rps),
            "version": version,
            "updated_at": "2026-11-30T10:00:00.000Z",
            "updated_by": "admin",
            "message": f"v{version}",
        }
    )


def legacy_history(version: int) -> bytes:
    return dumps(
        {
            "version": version,
            "action": "put",
            "updated_at": "2026-11-30T10:00:00.000Z",
            "updated_by": "admin",
            "message": f"v{version}",
            "kind": "RateLimits",
        }
    )


async def write_legacy_store(kv: EtcdKV) -> None:
    """prod/limits at version 2 and prod/keys at version 1, exactly as release 0.1 did."""
    keys = LAYOUT_KEYS
    ops = [put_op(keys.namespace("prod"), b"")]
    for name, versions in (("limits", [1, 2]), ("keys", [1])):
        for version in versions:
            ops.append(
                put_op(keys.history(ns="prod", name=name, version=version), legacy_history(version))
            )
            ops.append(put_op(keys.history_spec("prod", name, version), dumps(spec(version))))
        last = versions[-1]
        ops.append(put_op(keys.version("prod", name), str(last).encode()))
        ops.append(put_op(keys.doc("prod", name), legacy_document(last, last)))
    await kv.txn([], ops)


async def test_a_store_of_the_earlier_layout_is_read_then_migrated(
    etcd: EtcdProcess, service_factory: Callable[..., RunningService]
) -> None:
    kv = EtcdKV([etcd.client_url], timeout=5)
    try:
        await write_legacy_store(kv)
        store = EtcdConfigStore(kv, history_limit=1000)
        before = await store.get("prod", "limits")
        assert before is not None and before.spec == spec(2) and before.version == 2
        reader_revision = (await store.list_namespace("prod")).revision
        service = service_factory(keepalive=0.2)
        reader = SseReader(service.url, service.admin_token, ["prod"], since=reader_revision)
        try:
            with service.client() as api:
                # the service migrated at start: no document key holds a spec any more
                docs = await values(kv, "doc")
                assert all(b'"spec"' not in value for value in docs.values())
                marker = await kv.range(LAYOUT_KEYS.layout_marker())
                assert int(marker.kvs[0].value) == LAYOUT
                got = api.get("/v1/configs/prod/limits").json()
                assert (got["spec"], got["version"], got["message"]) == (spec(2), 2, "v2")
                listing = api.get("/v1/configs/prod").json()["items"]
                assert sorted((d["name"], d["version"]) for d in listing) == [
                    ("keys", 1),
                    ("limits", 2),
                ]
                history = api.get("/v1/configs/prod/limits/history").json()["items"]
                assert [row["version"] for row in history] == [2, 1]
                old = api.get("/v1/configs/prod/limits/versions/1").json()
                assert old["spec"] == spec(1)
                # the rewrites were not pushed as changes; the next real change is
                written = api.put(
                    "/v1/configs/prod/limits", json={"kind": "RateLimits", "spec": spec(9)}
                )
                assert written.status_code == 200 and written.json()["version"] == 3
                event = reader.next(timeout=10)
                assert event.event == "put" and event.data["version"] == 3
                assert event.data["spec"] == spec(9)
        finally:
            reader.close()
        assert await migrate(kv, LAYOUT_KEYS) == 0  # done once
    finally:
        await kv.close()


async def test_a_store_of_a_newer_layout_is_refused(etcd: EtcdProcess) -> None:
    kv = EtcdKV([etcd.client_url], timeout=5)
    try:
        await kv.txn([], [put_op(LAYOUT_KEYS.layout_marker(), str(LAYOUT + 1).encode())])
        with pytest.raises(NewerLayout, match="upgrade configsvc"):
            await migrate(kv, LAYOUT_KEYS)
    finally:
        await kv.close()
