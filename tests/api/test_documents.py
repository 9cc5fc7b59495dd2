"""GET/PUT/DELETE of documents, namespace listings, ETags and conditional requests."""

from __future__ import annotations

import re

import httpx

from tests.api.helpers import (
    RATE_SPEC,
    body,
    error_code,
    put_models,
    put_rate,
    rate_spec,
    raw_state,
)

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def test_put_creates_then_replaces(api: httpx.Client) -> None:
    created = api.put("/v1/configs/prod/limits", json=body("RateLimits", RATE_SPEC, message="m1"))
    assert created.status_code == 201, created.text
    doc = created.json()
    assert doc["namespace"] == "prod"
    assert doc["name"] == "limits"
    assert doc["kind"] == "RateLimits"
    assert doc["spec"] == RATE_SPEC
    assert doc["message"] == "m1"
    assert doc["version"] == 1
    assert doc["revision"] > 0
    assert RFC3339_UTC.match(doc["updated_at"]), doc["updated_at"]
    assert doc["updated_by"] == "admin"
    assert doc["changed"] is True
    assert created.headers["etag"] == f'"{doc["revision"]}"'

    replaced = put_rate(api, "prod", "limits", rps=7)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["version"] == 2
    assert replaced.json()["revision"] > doc["revision"]
    assert replaced.json()["spec"]["limits"]["chat"]["requests_per_second"] == 7

    assert replaced.json()["changed"] is True
    got = api.get("/v1/configs/prod/limits")
    assert got.status_code == 200
    assert got.json() == {k: v for k, v in replaced.json().items() if k != "changed"}
    assert got.headers["etag"] == f'"{replaced.json()["revision"]}"'


def test_put_accepts_a_document_as_read(api: httpx.Client) -> None:
    """A document read with GET may be written back as it is (service fields ignored)."""
    put_rate(api, "prod", "limits", rps=1)
    doc = api.get("/v1/configs/prod/limits").json()
    doc["spec"]["limits"]["chat"]["requests_per_second"] = 2
    response = api.put("/v1/configs/prod/limits", json=doc)
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 2


def test_get_unknown_document_is_404(api: httpx.Client) -> None:
    response = api.get("/v1/configs/prod/nothing")
    assert response.status_code == 404
    assert error_code(response) == "not_found"


def test_get_with_if_none_match_answers_304(api: httpx.Client) -> None:
    put_rate(api, "prod", "limits")
    first = api.get("/v1/configs/prod/limits")
    tag = first.headers["etag"]
    again = api.get("/v1/configs/prod/limits", headers={"If-None-Match": tag})
    assert again.status_code == 304
    assert again.headers["etag"] == tag
    assert again.content == b""
    other = api.get("/v1/configs/prod/limits", headers={"If-None-Match": '"1"'})
    assert other.status_code == 200
    put_rate(api, "prod", "limits", rps=9)
    changed = api.get("/v1/configs/prod/limits", headers={"If-None-Match": tag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != tag


def test_put_equal_to_stored_writes_nothing(api: httpx.Client, etcd) -> None:
    first = put_rate(api, "prod", "limits", rps=3)
    assert first.status_code == 201
    before = raw_state(etcd)
    again = put_rate(api, "prod", "limits", rps=3)
    assert again.status_code == 200, again.text
    assert again.json()["version"] == 1
    assert again.json()["revision"] == first.json()["revision"]
    assert again.json()["changed"] is False
    assert raw_state(etcd) == before
    history = api.get("/v1/configs/prod/limits/history").json()["items"]
    assert [item["version"] for item in history] == [1]


def test_if_match_compare_and_set(api: httpx.Client, unchanged) -> None:
    first = put_rate(api, "prod", "limits", rps=1)
    tag = first.headers["etag"]
    ok = put_rate(api, "prod", "limits", rps=2, headers={"If-Match": tag})
    assert ok.status_code == 200, ok.text
    assert ok.json()["version"] == 2

    snapshot = unchanged("prod")
    stale = put_rate(api, "prod", "limits", rps=3, headers={"If-Match": tag})
    assert stale.status_code == 412
    assert error_code(stale) == "precondition_failed"
    snapshot.check()
    assert api.get("/v1/configs/prod/limits").json()["spec"] == rate_spec(2)


def test_if_match_star_needs_an_existing_document(api: httpx.Client, unchanged) -> None:
    snapshot = unchanged("prod")
    absent = put_rate(api, "prod", "limits", headers={"If-Match": "*"})
    assert absent.status_code == 412
    snapshot.check()
    assert api.get("/v1/configs/prod/limits").status_code == 404
    put_rate(api, "prod", "limits", rps=1)
    present = put_rate(api, "prod", "limits", rps=2, headers={"If-Match": "*"})
    assert present.status_code == 200


def test_if_match_on_absent_document_is_412(api: httpx.Client, unchanged) -> None:
    snapshot = unchanged("prod")
    response = put_rate(api, "prod", "limits", headers={"If-Match": '"5"'})
    assert response.status_code == 412
    snapshot.check()


def test_if_none_match_star_is_create_only(api: httpx.Client, unchanged) -> None:
    created = put_rate(api, "prod", "limits", rps=1, headers={"If-None-Match": "*"})
    assert created.status_code == 201
    snapshot = unchanged("prod")
    again = put_rate(api, "prod", "limits", rps=2, headers={"If-None-Match": "*"})
    assert again.status_code == 409
    assert error_code(again) == "conflict"
    snapshot.check()


def test_dry_run_validates_and_stores_nothing(api: httpx.Client, unchanged) -> None:
    snapshot = unchanged("prod")
    would_create = put_rate(api, "prod", "limits", rps=4, params={"dry_run": "true"})
    assert would_create.status_code == 201, would_create.text
    assert would_create.json()["spec"] == rate_spec(4)
    assert would_create.json()["version"] == 1
    invalid = api.put(
        "/v1/configs/prod/limits",
        params={"dry_run": "true"},
        json=body("RateLimits", {"limits": {"chat": {"requests_per_second": 1, "burst": 0}}}),
    )
    assert invalid.status_code == 422
    snapshot.check()
    assert api.get("/v1/configs/prod/limits").status_code == 404

    put_rate(api, "prod", "limits", rps=1)
    snapshot = unchanged("prod")
    would_replace = put_rate(api, "prod", "limits", rps=8, params={"dry_run": "true"})
    assert would_replace.status_code == 200, would_replace.text
    assert would_replace.json()["version"] == 2
    assert would_replace.json()["spec"] == rate_spec(8)
    assert would_replace.json()["changed"] is True
    would_keep = put_rate(api, "prod", "limits", rps=1, params={"dry_run": "true"})
    assert (would_keep.status_code, would_keep.json()["changed"]) == (200, False)
    assert would_keep.json()["version"] == 1
    snapshot.check()
    assert api.get("/v1/configs/prod/limits").json()["spec"] == rate_spec(1)


def test_delete(api: httpx.Client) -> None:
    put_rate(api, "prod", "limits")
    response = api.delete("/v1/configs/prod/limits")
    assert response.status_code == 200, response.text
    assert response.json()["action"] == "delete"
    assert response.json()["version"] == 2
    assert api.get("/v1/configs/prod/limits").status_code == 404
    assert api.delete("/v1/configs/prod/limits").status_code == 404


def test_delete_honours_if_match(api: httpx.Client, unchanged) -> None:
    first = put_rate(api, "prod", "limits", rps=1)
    put_rate(api, "prod", "limits", rps=2)
    snapshot = unchanged("prod")
    stale = api.delete("/v1/configs/prod/limits", headers={"If-Match": first.headers["etag"]})
    assert stale.status_code == 412
    snapshot.check()
    current = api.get("/v1/configs/prod/limits").headers["etag"]
    assert api.delete("/v1/configs/prod/limits", headers={"If-Match": current}).status_code == 200


def test_list_namespace(api: httpx.Client) -> None:
    empty = api.get("/v1/configs/prod")
    assert empty.status_code == 200
    assert empty.json()["items"] == []
    assert isinstance(empty.json()["revision"], int)
    put_rate(api, "prod", "b-limits", rps=1)
    put_rate(api, "prod", "a-limits", rps=2)
    put_rate(api, "staging", "other", rps=3)
    listing = api.get("/v1/configs/prod")
    assert listing.status_code == 200
    payload = listing.json()
    assert sorted(item["name"] for item in payload["items"]) == ["a-limits", "b-limits"]
    assert all(item["namespace"] == "prod" for item in payload["items"])
    assert payload["revision"] >= max(item["revision"] for item in payload["items"])
    for item in payload["items"]:
        assert item == api.get(f"/v1/configs/prod/{item['name']}").json()


def test_namespace_etag_follows_puts_and_deletes_of_its_own_documents(api: httpx.Client) -> None:
    def tag() -> str:
        response = api.get("/v1/configs/prod")
        assert response.status_code == 200
        return response.headers["etag"]

    empty = tag()
    put_rate(api, "prod", "a", rps=1)
    after_create = tag()
    assert after_create != empty
    put_rate(api, "prod", "a", rps=2)
    after_replace = tag()
    assert after_replace != after_create
    put_rate(api, "prod", "b", rps=1)
    after_other_doc = tag()
    assert after_other_doc != after_replace

    put_rate(api, "staging", "a", rps=1)
    api.delete("/v1/configs/staging/a")
    assert tag() == after_other_doc, "writes to another namespace changed the ETag"

    put_rate(api, "prod", "b", rps=1)  # equal to stored: writes nothing
    assert tag() == after_other_doc

    api.delete("/v1/configs/prod/a")
    after_delete = tag()
    assert after_delete != after_other_doc

    not_modified = api.get("/v1/configs/prod", headers={"If-None-Match": after_delete})
    assert not_modified.status_code == 304
    assert not_modified.headers["etag"] == after_delete
    stale = api.get("/v1/configs/prod", headers={"If-None-Match": after_other_doc})
    assert stale.status_code == 200
    assert [item["name"] for item in stale.json()["items"]] == ["b"]


def test_list_namespaces(api: httpx.Client) -> None:
    assert api.get("/v1/namespaces").json()["items"] == []
    put_rate(api, "prod", "a")
    put_rate(api, "staging", "a")
    put_rate(api, "gone", "a")
    api.delete("/v1/configs/gone/a")
    response = api.get("/v1/namespaces")
    assert response.status_code == 200
    assert response.json()["items"] == ["prod", "staging"]


def test_unknown_kind_is_422(api: httpx.Client, unchanged) -> None:
    snapshot = unchanged("prod")
    response = api.put("/v1/configs/prod/x", json=body("NoSuchKind", {}))
    assert response.status_code == 422
    assert error_code(response) == "validation_failed"
    assert ["kind"] in [d["loc"] for d in response.json()["error"]["details"]]
    snapshot.check()


def test_models_document_round_trip(api: httpx.Client) -> None:
    created = put_models(api, "prod", "chat-models", read=600)
    assert created.status_code == 201, created.text
    got = api.get("/v1/configs/prod/chat-models").json()
    assert got["spec"]["endpoints"]["local-34b"]["timeout"]["read"] == 600
    assert got["spec"]["fallbacks"] == ["hosted"]


def test_dry_run_honours_conditions(api: httpx.Client, unchanged) -> None:
    first = put_rate(api, "prod", "limits", rps=1)
    put_rate(api, "prod", "limits", rps=2)
    snapshot = unchanged("prod")
    dry = {"dry_run": "true"}
    stale = put_rate(
        api, "prod", "limits", rps=3, params=dry, headers={"If-Match": first.headers["etag"]}
    )
    assert stale.status_code == 412
    exists = put_rate(api, "prod", "limits", rps=3, params=dry, headers={"If-None-Match": "*"})
    assert exists.status_code == 409
    current = api.get("/v1/configs/prod/limits").headers["etag"]
    ok = put_rate(api, "prod", "limits", rps=3, params=dry, headers={"If-Match": current})
    assert ok.status_code == 200
    assert ok.json()["version"] == 3
    snapshot.check()
