"""`POST /v1/promote`: documents copied between namespaces on the service, secrets included
but never shown, each target written by compare-and-set, history naming the source."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.api.helpers import HOSTED_KEY, LOCAL_KEY, model_spec, rate_spec

MODELS = "ModelEndpoints"


def put(api: httpx.Client, ref: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    response = api.put(f"/v1/configs/{ref}", json={"kind": kind, "spec": spec})
    assert response.status_code in (200, 201), response.text
    answer: dict[str, Any] = response.json()
    return answer


def promote(api: httpx.Client, **body: Any) -> dict[str, Any]:
    response = api.post("/v1/promote", json={"from": "staging", "to": "prod", **body})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def by_name(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in answer["items"]}


def staging_models(local_key: str = "sk-staging-local-key-000") -> dict[str, Any]:
    spec = model_spec(read=900)
    spec["endpoints"]["local-34b"]["api_key"] = local_key
    return spec


def test_dry_run_then_promote_with_secrets_copied_on_the_service(
    api: httpx.Client, unchanged: Callable[..., Any]
) -> None:
    put(api, "prod/models", MODELS, model_spec())
    put(api, "prod/only-in-prod", "RateLimits", rate_spec(1))
    put(api, "staging/models", MODELS, staging_models())
    put(api, "staging/limits", "RateLimits", rate_spec(7))
    prod_before = api.get("/v1/configs/prod/models").json()

    snapshot = unchanged("prod", "staging")
    dry = promote(api, dry_run=True)
    snapshot.check()  # a dry run writes nothing
    assert dry["dry_run"] is True and (dry["from"], dry["to"]) == ("staging", "prod")
    items = by_name(dry)
    assert set(items) == {"models", "limits"}  # the source's documents, not prod's own
    models, limits = items["models"], items["limits"]
    assert models["result"] == "would_update" and limits["result"] == "would_create"
    assert models["target"] == {"version": 1, "revision": prod_before["revision"]}
    assert limits["target"] is None and limits["before"] is None
    assert models["changed_secrets"] == [["spec", "endpoints", "local-34b", "api_key"]]
    assert models["version"] == 2 and models["revision"] is None
    text = str(dry)
    for secret in (LOCAL_KEY, HOSTED_KEY, "sk-staging-local-key-000"):
        assert secret not in text  # masked for everyone, the admin too
    assert models["after"]["spec"]["endpoints"]["local-34b"]["api_key"] == "****"
    assert models["before"]["spec"]["endpoints"]["local-34b"]["timeout"]["read"] == 600
    assert models["after"]["spec"]["endpoints"]["local-34b"]["timeout"]["read"] == 900

    real = promote(
        api,
        names=["models", "limits"],
        if_match={"models": models["target"]["revision"], "limits": 0},
        source_versions={"models": 1, "limits": 1},
        message="release 42",
    )
    items = by_name(real)
    assert items["models"]["result"] == "updated" and items["limits"]["result"] == "created"
    assert items["models"]["version"] == 2 and items["models"]["revision"] > 0
    promoted = api.get("/v1/configs/prod/models").json()
    staged = api.get("/v1/configs/staging/models").json()
    assert promoted["spec"] == staged["spec"]  # secrets included: the admin may read them
    assert promoted["spec"]["endpoints"]["local-34b"]["api_key"] == "sk-staging-local-key-000"
    history = api.get("/v1/configs/prod/models/history").json()["items"]
    assert history[0]["message"] == "promoted from staging/models version 1: release 42"
    assert api.get("/v1/configs/prod/only-in-prod").status_code == 200  # stays

    again = promote(api)
    assert {item["result"] for item in again["items"]} == {"unchanged"}
    assert api.get("/v1/configs/prod/models").json()["version"] == 2  # nothing written


def test_a_target_or_source_that_moved_since_the_dry_run_is_not_written(
    api: httpx.Client,
) -> None:
    put(api, "staging/models", MODELS, staging_models())
    put(api, "staging/limits", "RateLimits", rate_spec(7))
    put(api, "staging/new", "RateLimits", rate_spec(8))
    put(api, "prod/models", MODELS, model_spec())
    dry = by_name(promote(api, dry_run=True))
    put(api, "prod/models", MODELS, model_spec(read=30))  # someone edits prod meanwhile
    put(api, "staging/limits", "RateLimits", rate_spec(9))  # and staging
    put(api, "prod/new", "RateLimits", rate_spec(1))  # and creates what we would create
    real = by_name(
        promote(
            api,
            if_match={"models": dry["models"]["target"]["revision"], "new": 0},
            source_versions={name: item["source"]["version"] for name, item in dry.items()},
        )
    )
    assert real["models"]["result"] == "conflict"
    assert real["models"]["error"]["code"] == "precondition_failed"
    assert real["limits"]["result"] == "conflict"
    assert "staging/limits is at version 2, not 1" in real["limits"]["error"]["message"]
    assert real["new"]["result"] == "conflict" and real["new"]["error"]["code"] == "conflict"
    assert api.get("/v1/configs/prod/models").json()["version"] == 2  # the edit stays
    assert api.get("/v1/configs/prod/limits").status_code == 404


def test_promotion_needs_read_on_the_source_and_write_on_the_target(
    api: httpx.Client, make_token: Callable[..., str], service: Any
) -> None:
    put(api, "staging/limits", "RateLimits", rate_spec(7))
    allowed = make_token("promoter", "writer", ["prod", "staging"])
    read_only = make_token("viewer", "reader", ["*"])
    prod_only = make_token("prod-writer", "writer", ["prod"])
    body = {"from": "staging", "to": "prod"}
    with service.client(read_only) as client:
        assert client.post("/v1/promote", json=body).status_code == 403
    with service.client(prod_only) as client:
        assert client.post("/v1/promote", json=body).status_code == 403
    with service.client(allowed) as client:  # no secrets permission needed: none is shown
        answer = client.post("/v1/promote", json=body)
    assert answer.status_code == 200
    assert answer.json()["items"][0]["result"] == "created"
    history = api.get("/v1/configs/prod/limits/history").json()["items"]
    assert history[0]["updated_by"] == "promoter"


def test_refused_documents_and_unknown_names_are_reported_one_by_one(
    api: httpx.Client,
) -> None:
    put(api, "staging/limits", "RateLimits", rate_spec(7))
    answer = by_name(promote(api, names=["limits", "absent"]))
    assert answer["limits"]["result"] == "created"
    assert answer["absent"]["result"] == "missing"
    assert answer["absent"]["error"]["code"] == "not_found"
    # a prod document the source would replace: versions keep counting
    put(api, "prod/other", "RateLimits", rate_spec(1))
    put(api, "staging/other", "RateLimits", rate_spec(2))
    assert by_name(promote(api, names=["other"]))["other"]["version"] == 2


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"from": "staging", "to": "staging"}, 400),
        ({"from": "staging", "to": "Prod"}, 422),
        ({"from": "staging", "to": "prod", "names": ["Bad Name"]}, 400),
        ({"from": "staging", "to": "prod", "if_match": {"x": -1}}, 400),
        ({"from": "staging", "to": "prod", "surprise": True}, 422),
        ({"from": "staging"}, 422),
        ({"from": "staging", "to": "prod", "names": ["a"] * 1001}, 422),
    ],
)
def test_bad_requests_change_nothing(
    api: httpx.Client, unchanged: Callable[..., Any], body: dict[str, Any], status: int
) -> None:
    put(api, "staging/limits", "RateLimits", rate_spec(7))
    snapshot = unchanged("prod", "staging")
    response = api.post("/v1/promote", json=copy.deepcopy(body))
    assert response.status_code == status, response.text
    assert set(response.json()["error"]) == {"code", "message", "details"}
    snapshot.check()


def test_answers_match_the_openapi_description(api: httpx.Client, service: Any) -> None:
    import jsonschema_rs

    openapi = httpx.get(f"{service.url}/openapi.json", timeout=10).json()
    declared = openapi["paths"]["/v1/promote"]["post"]["responses"]["200"]
    schema = {**declared["content"]["application/json"]["schema"], **openapi}
    validator = jsonschema_rs.validator_for(schema)
    put(api, "staging/models", MODELS, staging_models())
    put(api, "prod/models", MODELS, model_spec())
    answers = [
        promote(api, dry_run=True),
        promote(api, names=["models", "absent"], if_match={"models": 1}),
        promote(api),
    ]
    for answer in answers:
        errors = [error.message for error in validator.iter_errors(answer)]
        assert not errors, (answer, errors)
    assert {item["result"] for item in answers[1]["items"]} == {"conflict", "missing"}
