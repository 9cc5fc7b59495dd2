"""A full etcd: writes answer 507 and change nothing, reads and new streams go on, readiness
and metrics say so, and `reclaim` brings the store back from within the product."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from capacity.conftest import QUOTA_BYTES
from support import RunningService, SseReader

BIG = 400_000
FILLS = 10


def big_spec(rps: int) -> dict[str, Any]:
    return {"limits": {f"l-{'x' * BIG}": {"requests_per_second": rps}}}


def fill(api: httpx.Client, path: str) -> list[int]:
    """Write ~400 KB versions until etcd refuses one for space; the versions written."""
    versions = []
    for rps in range(1, 200):
        answer = api.put(path, json={"kind": "RateLimits", "spec": big_spec(rps)})
        if answer.status_code == 507:
            return versions
        assert answer.status_code in (200, 201), answer.text[:300]
        versions.append(answer.json()["version"])
    raise AssertionError("etcd never filled up")


def metric(api: httpx.Client, name: str) -> float:
    text = api.get("/metrics").text
    found = re.search(rf"^{name} (\S+)$", text, re.M)
    assert found, name
    return float(found.group(1))


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_full_store_refuses_writes_clearly_and_reclaim_brings_it_back(
    full_service: RunningService,
) -> None:
    service = full_service
    with service.client() as api:
        small = {"kind": "RateLimits", "spec": {"limits": {"chat": {"requests_per_second": 1}}}}
        assert api.put("/v1/configs/prod/small", json=small).status_code == 201
        written = fill(api, "/v1/configs/prod/big")
        assert len(written) >= 3
        revision = api.get("/readyz").json()["revision"]

        refused = api.put(
            "/v1/configs/prod/big", json={"kind": "RateLimits", "spec": big_spec(999)}
        )
        assert refused.status_code == 507
        error = refused.json()["error"]
        assert error["code"] == "store_full" and "reclaim" in error["message"]
        refused_small = api.put("/v1/configs/prod/small", json={**small, "spec": {"limits": {}}})
        assert refused_small.status_code == 507
        assert api.get("/readyz").json() == {"status": "store_full", "revision": revision}
        assert api.get("/readyz").status_code == 200
        assert metric(api, "configsvc_store_full") == 1
        assert metric(api, "configsvc_store_quota_bytes") == QUOTA_BYTES

        # reads and a NEW stream keep working while full
        assert api.get("/v1/configs/prod/big").json()["version"] == written[-1]
        assert len(api.get("/v1/configs/prod").json()["items"]) == 2
        reader = SseReader(service.url, service.admin_token, ["prod"])
        try:
            snapshot = reader.next(timeout=10)
            assert snapshot is not None and snapshot.event == "snapshot"
            assert {d["name"] for d in snapshot.data["items"]} == {"small", "big"}
            history = api.get("/v1/configs/prod/big/history").json()["items"]
            assert history[0]["version"] == written[-1]

            reclaimed = api.post("/v1/admin/reclaim", json={"keep_versions": 1})
            assert reclaimed.status_code == 200, reclaimed.text
            result = reclaimed.json()
            assert result["freed_bytes"] > 0 and result["versions_removed"] == len(written) - 1
            assert result["documents"] == {"prod/big": written[-1]}
            assert api.get("/readyz").json()["status"] == "ready"
            assert metric(api, "configsvc_store_full") == 0

            after = api.put("/v1/configs/prod/small", json={**small, "spec": {"limits": {}}})
            assert after.status_code == 200, after.text
            event = reader.next(timeout=10)
            assert event is not None and event.event == "put" and event.data["name"] == "small"
        finally:
            reader.close()
        history = api.get("/v1/configs/prod/big/history").json()["items"]
        assert [row["version"] for row in history] == [written[-1]]
        audit = api.get("/v1/audit").json()["items"]
        assert audit[-2]["action"] == "reclaim" and audit[-1]["target"] == "prod/small"


def test_a_reclaim_needs_an_admin_and_a_sane_count(
    api: httpx.Client, service: RunningService
) -> None:
    assert api.post("/v1/admin/reclaim", json={"keep_versions": 0}).status_code == 422
    created = api.post("/v1/tokens", json={"name": "w", "role": "writer", "namespaces": ["*"]})
    writer = created.json()["token"]
    with service.client(writer) as as_writer:
        refused = as_writer.post("/v1/admin/reclaim", json={"keep_versions": 1})
        assert refused.status_code == 403
        assert as_writer.get("/v1/audit").status_code == 403


def test_concurrent_writes_into_a_full_store_are_answered_truly(
    full_service: RunningService,
) -> None:
    """etcd applies a write that takes it over its quota and answers NOSPACE all the same
    (two writes pass its quota check together, the second one's apply goes over). Every
    answer must still tell the truth: a 2xx is in the history, a 507 is not. (The race is
    met in some of the fills: ten, with a reclaim after each.)"""
    writers, answers = 12, {}
    lock = threading.Lock()

    def write(fill: int, doc: int) -> None:
        with full_service.client() as api:
            for seq in range(200):
                message = f"f{fill}-d{doc}-w{seq}"
                spec = big_spec(fill * 1000 + seq + 1)  # never equal: each answer writes
                body = {"kind": "RateLimits", "spec": spec, "message": message}
                answer = api.put(f"/v1/configs/prod/d{doc}", json=body)
                assert answer.status_code in (200, 201, 507), answer.text[:300]
                with lock:
                    answers[message] = answer.status_code
                if answer.status_code == 507:
                    return

    stored = set()
    with full_service.client() as api:
        for fill in range(FILLS):
            with ThreadPoolExecutor(writers) as pool:
                list(pool.map(lambda doc, fill=fill: write(fill, doc), range(writers)))
            for doc in range(writers):
                rows = api.get(f"/v1/configs/prod/d{doc}/history").json()["items"]
                stored |= {row["message"] for row in rows}
            reclaimed = api.post("/v1/admin/reclaim", json={"keep_versions": 1})
            assert reclaimed.status_code == 200, reclaimed.text
    acked = {message for message, status in answers.items() if status != 507}
    refused = {message for message, status in answers.items() if status == 507}
    assert refused and acked
    assert not refused & stored, f"answered 507 but applied: {sorted(refused & stored)}"
    assert acked <= stored
