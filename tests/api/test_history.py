"""History, versions and rollback, across delete, re-create, trimming and etcd compaction."""

from __future__ import annotations

import httpx
from support import start_service

from configsvc.store.etcd_store import EtcdConfigStore
from configsvc.store.records import NewContent
from tests.api.helpers import (
    HOSTED_KEY,
    body,
    error_code,
    locs,
    put_models,
    put_rate,
    rate_spec,
)

HISTORY_FIELDS = {"version", "revision", "updated_at", "updated_by", "message", "action"}


def versions(client: httpx.Client, ns: str, name: str, **params: int) -> list[int]:
    response = client.get(f"/v1/configs/{ns}/{name}/history", params=params)
    assert response.status_code == 200, response.text
    return [item["version"] for item in response.json()["items"]]


def test_history_is_newest_first_with_its_fields(api: httpx.Client) -> None:
    revisions = []
    for rps in (1, 2, 3):
        response = api.put(
            "/v1/configs/prod/limits", json=body("RateLimits", rate_spec(rps), message=f"to {rps}")
        )
        revisions.append(response.json()["revision"])
    response = api.get("/v1/configs/prod/limits/history")
    assert response.status_code == 200
    items = response.json()["items"]
    assert [item["version"] for item in items] == [3, 2, 1]
    assert [item["revision"] for item in items] == revisions[::-1]
    assert [item["message"] for item in items] == ["to 3", "to 2", "to 1"]
    for item in items:
        assert set(item) >= HISTORY_FIELDS, item
        assert "spec" not in item
        assert item["action"] == "put"
        assert item["updated_by"] == "admin"
        assert item["updated_at"].endswith("Z")
    assert versions(api, "prod", "limits", limit=2) == [3, 2]
    assert versions(api, "prod", "limits", limit=1) == [3]
    assert versions(api, "prod", "limits", limit=50) == [3, 2, 1]


def test_history_of_unknown_document_is_404(api: httpx.Client) -> None:
    response = api.get("/v1/configs/prod/nothing/history")
    assert response.status_code == 404
    assert error_code(response) == "not_found"


def test_versions_show_the_document_as_it_was(api: httpx.Client) -> None:
    first = put_rate(api, "prod", "limits", rps=1).json()
    put_rate(api, "prod", "limits", rps=2)
    response = api.get("/v1/configs/prod/limits/versions/1")
    assert response.status_code == 200, response.text
    old = response.json()
    assert old["spec"] == rate_spec(1)
    assert old["version"] == 1
    assert old["revision"] == first["revision"]
    assert old["kind"] == "RateLimits"
    assert old["namespace"] == "prod"
    assert old["name"] == "limits"
    assert api.get("/v1/configs/prod/limits/versions/2").json()["spec"] == rate_spec(2)
    for unknown in (0, 3, 999):
        missing = api.get(f"/v1/configs/prod/limits/versions/{unknown}")
        assert missing.status_code == 404, unknown
        assert error_code(missing) == "not_found"
    assert api.get("/v1/configs/prod/nothing/versions/1").status_code == 404


def test_history_across_delete_and_recreate(api: httpx.Client) -> None:
    put_rate(api, "prod", "limits", rps=1)
    put_rate(api, "prod", "limits", rps=2)
    deleted = api.delete("/v1/configs/prod/limits")
    assert deleted.status_code == 200
    assert deleted.json()["version"] == 3
    assert api.get("/v1/configs/prod/limits/history").json()["items"][0]["action"] == "delete"
    # the history of a deleted document stays readable
    assert versions(api, "prod", "limits") == [3, 2, 1]
    assert api.get("/v1/configs/prod/limits/versions/3").status_code == 404
    assert api.get("/v1/configs/prod/limits/versions/2").json()["spec"] == rate_spec(2)

    recreated = put_rate(api, "prod", "limits", rps=2)
    assert recreated.status_code == 201, "a re-create after delete is a creation"
    assert recreated.json()["version"] == 4
    put_rate(api, "prod", "limits", rps=5)
    api.delete("/v1/configs/prod/limits")
    again = put_rate(api, "prod", "limits", rps=6)
    assert again.json()["version"] == 7
    items = api.get("/v1/configs/prod/limits/history").json()["items"]
    assert [item["version"] for item in items] == [7, 6, 5, 4, 3, 2, 1]
    assert [item["action"] for item in items] == [
        "put",
        "delete",
        "put",
        "put",
        "delete",
        "put",
        "put",
    ]
    revisions = [item["revision"] for item in items]
    assert revisions == sorted(revisions, reverse=True)
    assert len(set(revisions)) == len(revisions)


def test_rollback_writes_a_new_version_with_the_old_spec(api: httpx.Client) -> None:
    put_rate(api, "prod", "limits", rps=1)
    put_rate(api, "prod", "limits", rps=2)
    response = api.post(
        "/v1/configs/prod/limits/rollback", json={"to_version": 1, "message": "back to 1"}
    )
    assert response.status_code == 200, response.text
    doc = response.json()
    assert doc["version"] == 3
    assert doc["spec"] == rate_spec(1)
    assert api.get("/v1/configs/prod/limits").json()["spec"] == rate_spec(1)
    top = api.get("/v1/configs/prod/limits/history").json()["items"][0]
    assert top["version"] == 3
    assert top["action"] == "rollback"
    assert top["message"] == "back to 1"
    assert top["revision"] == doc["revision"]


def test_rollback_of_a_deleted_document_recreates_it(api: httpx.Client) -> None:
    put_rate(api, "prod", "limits", rps=1)
    api.delete("/v1/configs/prod/limits")
    response = api.post("/v1/configs/prod/limits/rollback", json={"to_version": 1})
    assert response.status_code in (200, 201), response.text
    assert response.json()["version"] == 3
    assert api.get("/v1/configs/prod/limits").json()["spec"] == rate_spec(1)


def test_rollback_refusals_change_nothing(api: httpx.Client, unchanged) -> None:
    put_rate(api, "prod", "limits", rps=1)
    put_rate(api, "prod", "limits", rps=2)
    api.delete("/v1/configs/prod/limits")
    put_rate(api, "prod", "limits", rps=3)
    snapshot = unchanged("prod")
    unknown = api.post("/v1/configs/prod/limits/rollback", json={"to_version": 99})
    assert unknown.status_code == 404
    to_delete = api.post("/v1/configs/prod/limits/rollback", json={"to_version": 3})
    assert to_delete.status_code in (404, 422), to_delete.text
    for bad in ({}, {"to_version": 0}, {"to_version": "one"}, {"to_version": 1, "x": 1}):
        response = api.post("/v1/configs/prod/limits/rollback", json=bad)
        assert response.status_code in (400, 422), (bad, response.text)
        error_code(response)
    nothing = api.post("/v1/configs/prod/nothing/rollback", json={"to_version": 1})
    assert nothing.status_code == 404
    snapshot.check()


async def test_rollback_to_a_version_that_no_longer_validates_is_422(
    service, store: EtcdConfigStore, api: httpx.Client, unchanged
) -> None:
    """A stored version that today's schema refuses (written past the API) cannot come back."""
    bad_spec = {"limits": {"chat": {"requests_per_second": 1, "burst": 0}}}
    await store.put(
        "prod", "limits", lambda _cur: NewContent("RateLimits", bad_spec), author="legacy"
    )
    async with httpx.AsyncClient(
        base_url=service.url, headers={"Authorization": f"Bearer {service.admin_token}"}
    ) as client:
        response = await client.put(
            "/v1/configs/prod/limits", json=body("RateLimits", rate_spec(2))
        )
        assert response.status_code == 200, response.text
        snapshot = unchanged("prod")
        response = await client.post("/v1/configs/prod/limits/rollback", json={"to_version": 1})
        assert response.status_code == 422, response.text
        assert error_code(response) == "validation_failed"
        assert ["spec", "limits", "chat", "burst"] in locs(response)
        snapshot.check()
        # the old version itself stays readable
        old = await client.get("/v1/configs/prod/limits/versions/1")
        assert old.status_code == 200
        assert old.json()["spec"] == bad_spec


def test_history_is_trimmed_to_the_limit(etcd) -> None:
    service = start_service(etcd, history_limit=3)
    try:
        with service.client() as client:
            for rps in range(1, 7):
                put_rate(client, "prod", "limits", rps=rps)
            assert versions(client, "prod", "limits") == [6, 5, 4]
            for gone in (1, 2, 3):
                assert client.get(f"/v1/configs/prod/limits/versions/{gone}").status_code == 404
            assert client.get("/v1/configs/prod/limits/versions/4").json()["spec"] == rate_spec(4)
            assert client.post(
                "/v1/configs/prod/limits/rollback", json={"to_version": 2}
            ).status_code in (404, 422)
            client.delete("/v1/configs/prod/limits")
            assert versions(client, "prod", "limits") == [7, 6, 5]
            assert put_rate(client, "prod", "limits", rps=1).json()["version"] == 8
            assert versions(client, "prod", "limits") == [8, 7, 6]
    finally:
        service.stop()


async def test_history_survives_etcd_compaction(
    service, store: EtcdConfigStore, api: httpx.Client
) -> None:
    async with httpx.AsyncClient(
        base_url=service.url, headers={"Authorization": f"Bearer {service.admin_token}"}
    ) as client:
        for rps in (1, 2, 3):
            response = await client.put(
                "/v1/configs/prod/limits",
                json=body("RateLimits", rate_spec(rps), message=f"m{rps}"),
            )
            assert response.status_code in (200, 201)
        await client.delete("/v1/configs/prod/limits")
        await client.put("/v1/configs/prod/limits", json=body("RateLimits", rate_spec(9)))
        before = (await client.get("/v1/configs/prod/limits/history")).json()
        await store.kv.compact(await store.revision())
        after = await client.get("/v1/configs/prod/limits/history")
        assert after.status_code == 200
        assert after.json() == before
        assert [item["version"] for item in after.json()["items"]] == [5, 4, 3, 2, 1]
        for version, rps in ((1, 1), (2, 2), (3, 3), (5, 9)):
            old = await client.get(f"/v1/configs/prod/limits/versions/{version}")
            assert old.status_code == 200, (version, old.text)
            assert old.json()["spec"] == rate_spec(rps)
        rolled = await client.post("/v1/configs/prod/limits/rollback", json={"to_version": 2})
        assert rolled.status_code == 200, rolled.text
        assert rolled.json()["version"] == 6


def test_rollback_keeps_secrets(api: httpx.Client) -> None:
    put_models(api, "prod", "models", read=10)
    put_models(api, "prod", "models", read=20)
    response = api.post("/v1/configs/prod/models/rollback", json={"to_version": 1})
    assert response.status_code == 200, response.text
    stored = api.get("/v1/configs/prod/models").json()["spec"]
    assert stored["endpoints"]["hosted"]["api_key"] == HOSTED_KEY
    assert stored["endpoints"]["local-34b"]["timeout"]["read"] == 10
