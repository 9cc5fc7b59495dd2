"""The rollout routes' real answers, errors included, validate against `/openapi.json`."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema_rs
from support import RunningService

from tests.rollouts.helpers import KEY, identity_headers, limits
from tests.sdk.helpers import put

BASE = "/v1/configs/{ns}/{name}/rollouts"


def check(openapi: dict[str, Any], method: str, path: str, response: httpx.Response) -> None:
    declared = openapi["paths"][path][method]["responses"].get(str(response.status_code))
    assert declared is not None, f"{method} {path}: {response.status_code} not declared"
    schema = declared["content"]["application/json"]["schema"]
    whole = {**schema, "components": openapi["components"]}
    errors = [e.message for e in jsonschema_rs.validator_for(whole).iter_errors(response.json())]
    assert not errors, f"{method} {path} {response.status_code}: {errors}"


def test_rollout_answers_match_the_openapi_description(
    service: RunningService, api: httpx.Client
) -> None:
    openapi = httpx.get(f"{service.url}/openapi.json", timeout=10).json()
    current = f"{BASE}/current"
    check(openapi, "get", current, api.get(f"/v1/configs/{KEY}/rollouts/current"))  # 404
    put(api, KEY, limits(5))
    body = {"kind": "RateLimits", "spec": limits(6), "steps": [10, 100], "step_seconds": 60}
    check(openapi, "post", BASE, api.post(f"/v1/configs/{KEY}/rollouts", json=body))
    check(openapi, "post", BASE, api.post(f"/v1/configs/{KEY}/rollouts", json=body))  # 409
    check(openapi, "post", BASE, api.post(f"/v1/configs/{KEY}/rollouts", json={}))  # 422
    check(openapi, "get", current, api.get(f"/v1/configs/{KEY}/rollouts/current"))
    for action in ("pause", "resume", "pause", "promote", "abort"):
        answer = api.post(f"/v1/configs/{KEY}/rollouts/current/{action}")
        check(openapi, "post", f"{current}/{action}", answer)
    assert answer.status_code == 409  # the abort of a promoted rollout
    named = api.get("/v1/configs/prod", headers=identity_headers("gw-1", {"region": "eu"}))
    check(openapi, "get", "/v1/configs/{ns}", named)
    history = api.get(f"/v1/configs/{KEY}/history")
    check(openapi, "get", "/v1/configs/{ns}/{name}/history", history)
    assert {row["action"] for row in history.json()["items"]} == {"put", "rollout"}
    version = api.get(f"/v1/configs/{KEY}/versions/2")
    check(openapi, "get", "/v1/configs/{ns}/{name}/versions/{version}", version)
