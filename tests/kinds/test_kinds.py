"""The built-in kinds: the contract's examples pass; every rule is refused at its field path.

The service's answers are checked over the wire (a real service on a real etcd); the SDK's
side (`configsvc_schemas` models, which ignore unknown fields) is checked directly.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from configsvc_schemas import AuthKeys, KeyState, ModelEndpoints, RateLimits
from pydantic import ValidationError

SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

MODEL_ENDPOINTS: dict[str, Any] = {
    "default": "local-34b",
    "fallbacks": ["hosted"],
    "endpoints": {
        "local-34b": {
            "base_url": "http://127.0.0.1:1234/v1",
            "model": "codebooga-34b",
            "api_key": "sk-local",
            "timeout": {"connect": 5, "read": 600, "write": 30, "pool": 5},
            "retry": {"attempts": 3, "backoff_initial": 0.5, "backoff_max": 30, "jitter": True},
        },
        "hosted": {"base_url": "https://api.example.com/v1", "model": "big"},
    },
}
RATE_LIMITS: dict[str, Any] = {
    "limits": {
        "chat": {"requests_per_second": 5, "burst": 10, "tokens_per_minute": 200000},
        "embeddings": {"requests_per_minute": 600},
    }
}
AUTH_KEYS: dict[str, Any] = {
    "keys": [
        {
            "id": "team-a-2026-11",
            "sha256": SHA,
            "scopes": ["chat"],
            "state": "active",
            "not_before": "2026-11-01T00:00:00Z",
            "expires_at": "2027-01-01T00:00:00Z",
        },
        {"id": "team-b", "sha256": "0" * 64, "state": "retiring"},
        {"id": "team-c", "sha256": "a" * 64, "state": "revoked"},
    ]
}
EXAMPLES = {"ModelEndpoints": MODEL_ENDPOINTS, "RateLimits": RATE_LIMITS, "AuthKeys": AUTH_KEYS}

Edit = Callable[[dict[str, Any]], None]


def _set(path: tuple[Any, ...], value: Any) -> Edit:
    def edit(spec: dict[str, Any]) -> None:
        node = spec
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return edit


def _delete(path: tuple[Any, ...]) -> Edit:
    def edit(spec: dict[str, Any]) -> None:
        node = spec
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return edit


LOCAL = ("endpoints", "local-34b")
CHAT = ("limits", "chat")

# (kind, what breaks, the edit, the field path the service must report)
INVALID: list[tuple[str, str, Edit, list[Any]]] = [
    ("ModelEndpoints", "default names no endpoint", _set(("default",), "nope"), ["default"]),
    (
        "ModelEndpoints",
        "fallback names no endpoint",
        _set(("fallbacks",), ["hosted", "nope"]),
        ["fallbacks", 1],
    ),
    ("ModelEndpoints", "no endpoints", _set(("endpoints",), {}), ["endpoints"]),
    (
        "ModelEndpoints",
        "read timeout 0",
        _set((*LOCAL, "timeout", "read"), 0),
        [*LOCAL, "timeout", "read"],
    ),
    (
        "ModelEndpoints",
        "negative connect timeout",
        _set((*LOCAL, "timeout", "connect"), -1),
        [*LOCAL, "timeout", "connect"],
    ),
    (
        "ModelEndpoints",
        "pool timeout 0",
        _set((*LOCAL, "timeout", "pool"), 0),
        [*LOCAL, "timeout", "pool"],
    ),
    (
        "ModelEndpoints",
        "backoff_max below backoff_initial",
        _set((*LOCAL, "retry"), {"backoff_initial": 5, "backoff_max": 1}),
        [*LOCAL, "retry", "backoff_max"],
    ),
    (
        "ModelEndpoints",
        "attempts 0",
        _set((*LOCAL, "retry", "attempts"), 0),
        [*LOCAL, "retry", "attempts"],
    ),
    (
        "ModelEndpoints",
        "ftp URL",
        _set((*LOCAL, "base_url"), "ftp://host/v1"),
        [*LOCAL, "base_url"],
    ),
    (
        "ModelEndpoints",
        "URL without scheme",
        _set((*LOCAL, "base_url"), "127.0.0.1:1234/v1"),
        [*LOCAL, "base_url"],
    ),
    (
        "ModelEndpoints",
        "URL without host",
        _set((*LOCAL, "base_url"), "http://"),
        [*LOCAL, "base_url"],
    ),
    ("ModelEndpoints", "no model", _delete((*LOCAL, "model")), [*LOCAL, "model"]),
    ("ModelEndpoints", "no default", _delete(("default",)), ["default"]),
    ("ModelEndpoints", "api_key not a string", _set((*LOCAL, "api_key"), 5), [*LOCAL, "api_key"]),
    ("ModelEndpoints", "unknown endpoint field", _set((*LOCAL, "timeot"), {}), [*LOCAL, "timeot"]),
    (
        "ModelEndpoints",
        "unknown timeout field",
        _set((*LOCAL, "timeout", "totl"), 5),
        [*LOCAL, "timeout", "totl"],
    ),
    ("ModelEndpoints", "unknown top-level field", _set(("defualt",), "x"), ["defualt"]),
    ("RateLimits", "burst 0", _set((*CHAT, "burst"), 0), [*CHAT, "burst"]),
    ("RateLimits", "burst -3", _set((*CHAT, "burst"), -3), [*CHAT, "burst"]),
    (
        "RateLimits",
        "neither rate",
        _set(CHAT, {"burst": 3}),
        [*CHAT, "requests_per_second"],
    ),
    (
        "RateLimits",
        "both rates",
        _set((*CHAT, "requests_per_minute"), 60),
        [*CHAT, "requests_per_minute"],
    ),
    (
        "RateLimits",
        "zero rate",
        _set((*CHAT, "requests_per_second"), 0),
        [*CHAT, "requests_per_second"],
    ),
    ("RateLimits", "unknown limit field", _set((*CHAT, "brust"), 3), [*CHAT, "brust"]),
    ("AuthKeys", "short sha256", _set(("keys", 0, "sha256"), "a" * 63), ["keys", 0, "sha256"]),
    ("AuthKeys", "long sha256", _set(("keys", 0, "sha256"), "a" * 65), ["keys", 0, "sha256"]),
    ("AuthKeys", "non-hex sha256", _set(("keys", 1, "sha256"), "g" * 64), ["keys", 1, "sha256"]),
    ("AuthKeys", "duplicate key id", _set(("keys", 2, "id"), "team-a-2026-11"), ["keys", 2, "id"]),
    (
        "AuthKeys",
        "state not active, retiring or revoked",
        _set(("keys", 0, "state"), "expired"),
        ["keys", 0, "state"],
    ),
    (
        "AuthKeys",
        "naive datetime",
        _set(("keys", 0, "not_before"), "2026-11-01T00:00:00"),
        ["keys", 0, "not_before"],
    ),
    ("AuthKeys", "unknown key field", _set(("keys", 0, "key"), "plain"), ["keys", 0, "key"]),
]


def broken(kind: str, edit: Edit) -> dict[str, Any]:
    spec = copy.deepcopy(EXAMPLES[kind])
    edit(spec)
    return spec


def test_contract_examples_are_accepted_and_stored(api: httpx.Client) -> None:
    for kind, spec in EXAMPLES.items():
        name = kind.lower()
        response = api.put(f"/v1/configs/prod/{name}", json={"kind": kind, "spec": spec})
        assert response.status_code == 201, (kind, response.text)
        stored = api.get(f"/v1/configs/prod/{name}").json()
        assert stored["kind"] == kind
        # what was sent is what is served (the service adds no defaults to the document)
        model = {"ModelEndpoints": ModelEndpoints, "RateLimits": RateLimits, "AuthKeys": AuthKeys}
        assert model[kind].model_validate(stored["spec"]) == model[kind].model_validate(spec)


def test_minimal_documents_are_accepted(api: httpx.Client) -> None:
    minimal = {
        "ModelEndpoints": {
            "default": "a",
            "endpoints": {"a": {"base_url": "https://x.example", "model": "m"}},
        },
        "RateLimits": {"limits": {}},
        "AuthKeys": {"keys": []},
    }
    for kind, spec in minimal.items():
        response = api.put(
            f"/v1/configs/prod/min-{kind.lower()}", json={"kind": kind, "spec": spec}
        )
        assert response.status_code == 201, (kind, response.text)


def test_every_rule_is_refused_at_its_field_path(api: httpx.Client) -> None:
    failures = []
    for kind, what, edit, loc in INVALID:
        response = api.put("/v1/configs/prod/doc", json={"kind": kind, "spec": broken(kind, edit)})
        if response.status_code != 422:
            failures.append(f"{kind}: {what}: answered {response.status_code}")
            continue
        error = response.json()["error"]
        assert error["code"] == "validation_failed"
        got = [detail["loc"] for detail in error["details"]]
        if ["spec", *loc] not in got:
            failures.append(f"{kind}: {what}: expected loc {['spec', *loc]}, got {got}")
        for detail in error["details"]:
            assert detail["msg"], detail
    assert not failures, "\n".join(failures)
    assert api.get("/v1/configs/prod/doc").status_code == 404


def test_dry_run_reports_the_same_paths(api: httpx.Client) -> None:
    for kind, _what, edit, loc in INVALID[:3]:
        response = api.put(
            "/v1/configs/prod/doc",
            params={"dry_run": "true"},
            json={"kind": kind, "spec": broken(kind, edit)},
        )
        assert response.status_code == 422
        assert ["spec", *loc] in [d["loc"] for d in response.json()["error"]["details"]]


@pytest.mark.parametrize(("kind", "what", "edit", "loc"), INVALID, ids=[i[1] for i in INVALID])
def test_models_refuse_the_same_documents(kind: str, what: str, edit: Edit, loc: list[Any]) -> None:
    """The SDK's models apply the same rules (unknown fields aside: the SDK ignores them)."""
    model = {"ModelEndpoints": ModelEndpoints, "RateLimits": RateLimits, "AuthKeys": AuthKeys}[kind]
    spec = broken(kind, edit)
    if what.startswith("unknown"):
        model.model_validate(spec)  # ignored on the SDK side
        with pytest.raises(ValidationError) as excinfo:
            model.model_validate(spec, extra="forbid")
    else:
        with pytest.raises(ValidationError) as excinfo:
            model.model_validate(spec)
    assert tuple(loc) in [err["loc"] for err in excinfo.value.errors()]


def test_sdk_models_ignore_unknown_fields() -> None:
    spec = copy.deepcopy(MODEL_ENDPOINTS)
    spec["added_in_v2"] = {"x": 1}
    spec["endpoints"]["local-34b"]["new_field"] = True
    spec["endpoints"]["local-34b"]["timeout"]["totl"] = 900
    value = ModelEndpoints.model_validate(spec)
    local = value.endpoints["local-34b"]
    assert local.timeout.read == 600
    assert local.api_key == "sk-local"
    assert not hasattr(local, "new_field")
    assert value.fallbacks == ["hosted"]


def test_sdk_model_defaults_and_helpers() -> None:
    value = ModelEndpoints.model_validate(
        {"default": "a", "endpoints": {"a": {"base_url": "http://h:1/v1", "model": "m"}}}
    )
    endpoint = value.endpoints["a"]
    assert endpoint.timeout.connect > 0
    assert endpoint.timeout.read > 0
    assert endpoint.retry.attempts >= 1
    assert endpoint.retry.backoff_max >= endpoint.retry.backoff_initial
    assert endpoint.api_key is None
    assert value.fallbacks == []

    limits = RateLimits.model_validate(RATE_LIMITS).limits
    assert limits["chat"].rate_per_second == 5
    assert limits["embeddings"].rate_per_second == 10
    assert limits["embeddings"].burst == 1

    keys = AuthKeys.model_validate(AUTH_KEYS).keys
    assert keys[0].state is KeyState.ACTIVE
    assert not keys[0].valid_at(datetime(2026, 10, 31, tzinfo=UTC))
    assert keys[0].valid_at(datetime(2026, 12, 1, tzinfo=UTC))
    assert not keys[0].valid_at(datetime(2027, 1, 1, tzinfo=UTC))
    assert keys[1].valid_at(datetime(2030, 1, 1, tzinfo=UTC))
    assert not keys[2].valid_at(datetime(2026, 12, 1, tzinfo=UTC))
