"""Liveness, readiness, metrics, OpenAPI docs and the kinds' JSON Schemas."""

from __future__ import annotations

import httpx

from tests.api.helpers import error_code, put_rate


def test_healthz_and_readyz(service) -> None:
    with httpx.Client(base_url=service.url, timeout=10) as anonymous:
        health = anonymous.get("/healthz")
        assert health.status_code == 200
        ready = anonymous.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["status"] == "ready"


def test_metrics_count_requests(service, api: httpx.Client) -> None:
    put_rate(api, "prod", "limits")
    api.get("/v1/configs/prod/limits")
    api.get("/v1/configs/prod/nothing")
    response = httpx.get(f"{service.url}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "# TYPE configsvc_http_requests_total counter" in text

    def count(method: str, route: str, status: str) -> float:
        prefix = "configsvc_http_requests_total{"
        for line in text.splitlines():
            if (
                line.startswith(prefix)
                and f'method="{method}"' in line
                and f'route="{route}"' in line
                and f'status="{status}"' in line
            ):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    assert count("PUT", "/v1/configs/{ns}/{name}", "201") == 1
    assert count("GET", "/v1/configs/{ns}/{name}", "200") == 1
    assert count("GET", "/v1/configs/{ns}/{name}", "404") == 1
    assert "configsvc_store_operation_seconds" in text
    assert "configsvc_watch_subscribers" in text

    api.get("/v1/configs/prod/limits")
    again = httpx.get(f"{service.url}/metrics", timeout=10).text
    text = again
    assert count("GET", "/v1/configs/{ns}/{name}", "200") == 2


def test_openapi_and_docs_are_served(service) -> None:
    with httpx.Client(base_url=service.url, timeout=10) as anonymous:
        spec = anonymous.get("/openapi.json")
        assert spec.status_code == 200
        paths = spec.json()["paths"]
        for path in (
            "/v1/configs/{ns}",
            "/v1/configs/{ns}/{name}",
            "/v1/configs/{ns}/{name}/history",
            "/v1/configs/{ns}/{name}/versions/{version}",
            "/v1/configs/{ns}/{name}/rollback",
            "/v1/namespaces",
            "/v1/schemas",
            "/v1/schemas/{kind}",
            "/v1/tokens",
            "/healthz",
            "/readyz",
        ):
            assert path in paths, path
        docs = anonymous.get("/docs")
        assert docs.status_code == 200
        assert "text/html" in docs.headers["content-type"]
        assert "openapi.json" in docs.text


def test_schemas(api: httpx.Client) -> None:
    response = api.get("/v1/schemas")
    assert response.status_code == 200
    items = {item["kind"]: item["schema"] for item in response.json()["items"]}
    assert set(items) >= {"ModelEndpoints", "RateLimits", "AuthKeys"}
    models = items["ModelEndpoints"]
    assert models["type"] == "object"
    assert {"default", "endpoints"} <= set(models["required"])
    assert models.get("additionalProperties") is False

    one = api.get("/v1/schemas/RateLimits")
    assert one.status_code == 200
    assert one.json()["schema"] == items["RateLimits"]
    assert "limits" in one.json()["schema"]["properties"]

    missing = api.get("/v1/schemas/NoSuchKind")
    assert missing.status_code == 404
    assert error_code(missing) == "not_found"
