"""`/openapi.json` describes every answer: real answers and the documented examples validate
against the schemas it declares, so that a client can be generated from it alone."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema_rs
import pytest
from support import RunningService

from tests.api.helpers import model_spec, rate_spec

UNDESCRIBED = {("get", "/v1/watch")}
"""A stream: described as text/event-stream (its events are in docs/api.md)."""
NO_CONTENT = "204"
"""An answer without a body (fleet reports and goodbyes)."""


@pytest.fixture
def openapi(service: RunningService) -> dict[str, Any]:
    document: dict[str, Any] = httpx.get(f"{service.url}/openapi.json", timeout=10).json()
    return document


def schema_for(openapi: dict[str, Any], method: str, path: str, status: int) -> dict[str, Any]:
    """The JSON schema declared for the answer of `status`, resolvable in `openapi`."""
    responses = openapi["paths"][path][method]["responses"]
    declared = responses.get(str(status))
    assert declared is not None, f"{method.upper()} {path} declares no {status} answer"
    schema = declared["content"]["application/json"]["schema"]
    return {**schema, "components": openapi["components"]}


def check(openapi: dict[str, Any], method: str, path: str, response: httpx.Response) -> None:
    schema = schema_for(openapi, method, path, response.status_code)
    errors = [e.message for e in jsonschema_rs.validator_for(schema).iter_errors(response.json())]
    assert not errors, f"{method.upper()} {path} {response.status_code}: {errors}"


def test_every_operation_declares_its_answers_and_errors(openapi: dict[str, Any]) -> None:
    for path, item in openapi["paths"].items():
        for method, operation in item.items():
            if (method, path) in UNDESCRIBED:
                continue
            responses = operation["responses"]
            ok = [code for code in responses if code.startswith("2")]
            assert ok, f"{method} {path}: no success answer"
            for code in ok:
                if code == NO_CONTENT:
                    assert "content" not in responses[code], f"{method} {path}: 204 with a body"
                    continue
                content = responses[code].get("content", {})
                schema = next(iter(content.values()), {}).get("schema")
                assert schema, f"{method} {path} {code}: no schema"
            if path.startswith("/v1/"):
                assert "401" in responses, f"{method} {path}: 401 not declared"
                error = responses["401"]["content"]["application/json"]["schema"]
                assert error == {"$ref": "#/components/schemas/ErrorOut"}


def test_the_documented_examples_validate(openapi: dict[str, Any]) -> None:
    checked = 0
    for name, schema in openapi["components"]["schemas"].items():
        for example in schema.get("examples", []):
            whole = {**schema, "components": openapi["components"]}
            assert jsonschema_rs.is_valid(whole, example), name
            checked += 1
    assert checked >= 2


def test_real_answers_validate(openapi: dict[str, Any], api: httpx.Client) -> None:
    doc = "/v1/configs/{ns}/{name}"
    put = api.put("/v1/configs/prod/models", json={"kind": "ModelEndpoints", "spec": model_spec()})
    check(openapi, "put", doc, put)
    changed = api.put(
        "/v1/configs/prod/models", json={"kind": "ModelEndpoints", "spec": model_spec(read=30)}
    )
    check(openapi, "put", doc, changed)
    dry = api.put(
        "/v1/configs/prod/limits",
        params={"dry_run": "true"},
        json={"kind": "RateLimits", "spec": rate_spec()},
    )
    check(openapi, "put", doc, dry)
    check(openapi, "get", doc, api.get("/v1/configs/prod/models"))
    check(openapi, "get", "/v1/configs/{ns}", api.get("/v1/configs/prod"))
    check(openapi, "get", "/v1/namespaces", api.get("/v1/namespaces"))
    check(openapi, "get", doc + "/history", api.get("/v1/configs/prod/models/history"))
    check(
        openapi, "get", doc + "/versions/{version}", api.get("/v1/configs/prod/models/versions/1")
    )
    rollback = api.post("/v1/configs/prod/models/rollback", json={"to_version": 1})
    check(openapi, "post", doc + "/rollback", rollback)
    check(openapi, "delete", doc, api.delete("/v1/configs/prod/models"))
    check(openapi, "get", "/v1/schemas", api.get("/v1/schemas"))
    check(openapi, "get", "/v1/schemas/{kind}", api.get("/v1/schemas/RateLimits"))
    check(openapi, "get", "/v1/whoami", api.get("/v1/whoami"))
    created = api.post("/v1/tokens", json={"name": "r", "role": "reader", "namespaces": ["*"]})
    check(openapi, "post", "/v1/tokens", created)
    check(openapi, "get", "/v1/tokens", api.get("/v1/tokens"))
    check(openapi, "delete", "/v1/tokens/{name}", api.delete("/v1/tokens/r"))
    check(openapi, "get", "/healthz", api.get("/healthz"))
    check(openapi, "get", "/readyz", api.get("/readyz"))
    # errors
    check(openapi, "get", doc, api.get("/v1/configs/prod/missing"))
    bad = api.put("/v1/configs/prod/x", json={"kind": "RateLimits", "spec": {"limits": 1}})
    assert bad.status_code == 422
    check(openapi, "put", doc, bad)
    unauthorized = httpx.get(str(api.base_url.join("/v1/configs/prod")), timeout=5)
    check(openapi, "get", "/v1/configs/{ns}", unauthorized)


def test_the_api_declares_a_bearer_scheme(openapi: dict[str, Any]) -> None:
    schemes = openapi["components"].get("securitySchemes", {})
    assert any(s.get("scheme") == "bearer" for s in schemes.values()), schemes
