"""Put events, snapshots, replays and reads say what wrote a version: `put` or `rollback`
(with `rolled_back_to`), against a real etcd and a real uvicorn server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from support import RunningService, SseReader

from configsvc.store.etcd_client import put_op
from configsvc.store.etcd_store import EtcdConfigStore
from configsvc.store.records import Action, NewContent, dumps

KEEPALIVE = 0.2


def models(read: float) -> dict[str, Any]:
    endpoint = {"base_url": "http://127.0.0.1:1/v1", "model": "m", "api_key": "sk-secret-1"}
    return {
        "kind": "ModelEndpoints",
        "spec": {"default": "a", "endpoints": {"a": {**endpoint, "timeout": {"read": read}}}},
    }


@pytest.fixture
def svc(service_factory: Callable[..., RunningService]) -> RunningService:
    return service_factory(keepalive=KEEPALIVE)


@pytest.fixture
def api(svc: RunningService) -> Iterator[httpx.Client]:
    with svc.client() as client:
        yield client


def put(api: httpx.Client, read: float) -> dict[str, Any]:
    response = api.put("/v1/configs/prod/models", json=models(read))
    assert response.status_code in (200, 201), response.text
    answer: dict[str, Any] = response.json()
    return answer


def actions(event_data: dict[str, Any]) -> tuple[Any, ...]:
    return (event_data["version"], event_data["action"], event_data.get("rolled_back_to"))


def test_a_rollback_is_pushed_and_read_as_a_rollback(
    svc: RunningService, api: httpx.Client
) -> None:
    first = put(api, 10)
    reader_token = api.post(
        "/v1/tokens", json={"name": "r", "role": "reader", "namespaces": ["prod"]}
    ).json()["token"]
    live = SseReader(svc.url, svc.admin_token, ["prod"], since=first["revision"])
    masked = SseReader(svc.url, reader_token, ["prod"], since=first["revision"])
    try:
        assert first["action"] == "put" and "rolled_back_to" not in first
        put(api, 20)
        rolled = api.post("/v1/configs/prod/models/rollback", json={"to_version": 1})
        assert rolled.status_code == 200, rolled.text
        assert (rolled.json()["action"], rolled.json()["rolled_back_to"]) == ("rollback", 1)
        for reader in (live, masked):
            events = [reader.next(), reader.next()]
            assert [e.event for e in events] == ["put", "put"]
            assert [actions(e.data) for e in events] == [(2, "put", None), (3, "rollback", 1)]
        assert masked.next(timeout=0.5 + 2 * KEEPALIVE, comments=True).event == "comment"
    finally:
        live.close()
        masked.close()

    got = api.get("/v1/configs/prod/models").json()
    assert actions(got) == (3, "rollback", 1)
    listed = api.get("/v1/configs/prod").json()["items"]
    assert [actions(doc) for doc in listed] == [(3, "rollback", 1)]
    history = api.get("/v1/configs/prod/models/history").json()["items"]
    assert [(row["action"], row.get("rolled_back_to")) for row in history] == [
        ("rollback", 1),
        ("put", None),
        ("put", None),
    ]
    assert actions(api.get("/v1/configs/prod/models/versions/3").json()) == (3, "rollback", 1)

    # a resume replays from the history records, a fresh stream starts with a snapshot
    replay = SseReader(svc.url, svc.admin_token, ["prod"], since=first["revision"])
    snapshot = SseReader(svc.url, svc.admin_token, ["prod"])
    try:
        assert [actions(replay.next().data) for _ in range(2)] == [
            (2, "put", None),
            (3, "rollback", 1),
        ]
        first_event = snapshot.next()
        assert first_event.event == "snapshot"
        assert [actions(doc) for doc in first_event.data["items"]] == [(3, "rollback", 1)]
    finally:
        replay.close()
        snapshot.close()


def test_a_document_read_with_get_is_written_back_as_it_is(api: httpx.Client) -> None:
    put(api, 10)
    put(api, 20)
    api.post("/v1/configs/prod/models/rollback", json={"to_version": 1})
    read = api.get("/v1/configs/prod/models").json()
    read["spec"]["endpoints"]["a"]["timeout"]["read"] = 30
    written = api.put("/v1/configs/prod/models", json=read)
    assert written.status_code == 200, written.text
    assert actions(written.json()) == (4, "put", None)


async def test_metadata_written_before_actions_were_kept_reads_as_put(
    store: EtcdConfigStore,
) -> None:
    await store.put(
        "prod", "limits", lambda _c: NewContent("RateLimits", {"limits": {}}), author="t"
    )
    current = await store.get("prod", "limits")
    assert current is not None and current.action is Action.PUT
    earlier = {
        "kind": current.kind,
        "version": current.version,
        "updated_at": current.updated_at,
        "updated_by": current.updated_by,
        "message": None,
    }
    await store.kv.txn([], [put_op(store.layout.doc("prod", "limits"), dumps(earlier))])
    again = await store.get("prod", "limits")
    assert again is not None and again.action is Action.PUT and again.rolled_back_to is None
    assert again.to_json()["action"] == "put" and "rolled_back_to" not in again.to_json()
