"""ModelEndpoints v2 fields through the real service: the contract's example is stored and
read back the same; every cross-field rule is a 422 at its field path; v1 documents mean
what they meant."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest
from configsvc_schemas import ModelEndpoints
from pydantic import ValidationError

V2: dict[str, Any] = {
    "default": "local",
    "fallbacks": ["hosted"],
    "groups": {"local": {"local-a": 3, "local-b": 1}},
    "tasks": {
        "classify": {"timeout": {"read": 10}, "retry": {"attempts": 2}},
        "codegen": {"timeout": {"read": 900, "first_token": 120}},
    },
    "endpoints": {
        "local-a": {
            "base_url": "http://gpu-a.internal:1234/v1",
            "model": "codebooga-34b",
            "timeout": {
                "connect": 5,
                "read": 600,
                "write": 30,
                "pool": 5,
                "first_token": 60,
                "idle": 30,
                "total": 900,
            },
            "adaptive": {"percentile": 95, "multiplier": 3, "min": 5, "max": 900, "samples": 50},
            "retry": {
                "attempts": 3,
                "backoff_initial": 0.5,
                "backoff_max": 30,
                "jitter": True,
                "on_status": [429, 500, 502, 503, 504],
            },
            "breaker": {"failures": 5, "window": 30, "cooldown": 30},
        },
        "local-b": {"base_url": "http://gpu-b.internal:1234/v1", "model": "codebooga-34b"},
        "hosted": {"base_url": "https://api.example.com/v1", "model": "big", "api_key": "sk-x"},
    },
}

A = ("endpoints", "local-a")

# (what breaks, path to set, value, field path of the error)
INVALID: list[tuple[str, tuple[Any, ...], Any, list[Any]]] = [
    (
        "group member names no endpoint",
        ("groups", "local", "gpu-c"),
        1,
        ["groups", "local", "gpu-c"],
    ),
    ("group named like an endpoint", ("groups", "hosted"), {"local-a": 1}, ["groups", "hosted"]),
    ("weight 0", ("groups", "local", "local-b"), 0, ["groups", "local", "local-b"]),
    ("negative weight", ("groups", "local", "local-a"), -2, ["groups", "local", "local-a"]),
    ("empty group", ("groups", "local"), {}, ["groups", "local"]),
    ("default names nothing", ("default",), "nope", ["default"]),
    ("fallback names nothing", ("fallbacks",), ["local", "nope"], ["fallbacks", 1]),
    ("adaptive min > max", (*A, "adaptive", "min"), 1000, [*A, "adaptive", "max"]),
    (
        "adaptive percentile > 100",
        (*A, "adaptive", "percentile"),
        101,
        [*A, "adaptive", "percentile"],
    ),
    (
        "adaptive multiplier < 1",
        (*A, "adaptive", "multiplier"),
        0.5,
        [*A, "adaptive", "multiplier"],
    ),
    ("adaptive samples 0", (*A, "adaptive", "samples"), 0, [*A, "adaptive", "samples"]),
    ("first_token 0", (*A, "timeout", "first_token"), 0, [*A, "timeout", "first_token"]),
    ("idle negative", (*A, "timeout", "idle"), -1, [*A, "timeout", "idle"]),
    ("total 0", (*A, "timeout", "total"), 0, [*A, "timeout", "total"]),
    ("on_status 200", (*A, "retry", "on_status"), [429, 200], [*A, "retry", "on_status", 1]),
    ("breaker failures 0", (*A, "breaker", "failures"), 0, [*A, "breaker", "failures"]),
    ("breaker cooldown 0", (*A, "breaker", "cooldown"), 0, [*A, "breaker", "cooldown"]),
    (
        "task read 0",
        ("tasks", "classify", "timeout", "read"),
        0,
        ["tasks", "classify", "timeout", "read"],
    ),
    (
        "task backoff above an endpoint's max",
        ("tasks", "classify", "retry", "backoff_initial"),
        60,
        ["tasks", "classify", "retry", "backoff_max"],
    ),
    ("unknown task field", ("tasks", "classify", "timeot"), {}, ["tasks", "classify", "timeot"]),
    ("unknown breaker field", (*A, "breaker", "failure"), 3, [*A, "breaker", "failure"]),
]


def broken(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    spec = copy.deepcopy(V2)
    node = spec
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return spec


def test_the_contracts_example_is_stored_as_sent(api: httpx.Client) -> None:
    response = api.put("/v1/configs/prod/chat-models", json={"kind": "ModelEndpoints", "spec": V2})
    assert response.status_code == 201, response.text
    stored = api.get("/v1/configs/prod/chat-models").json()["spec"]
    assert ModelEndpoints.model_validate(stored) == ModelEndpoints.model_validate(V2)
    assert stored["endpoints"]["hosted"]["api_key"] == "sk-x"  # the admin token sees secrets


def test_every_v2_rule_is_a_422_at_its_field_path(api: httpx.Client) -> None:
    failures = []
    for what, path, value, loc in INVALID:
        spec = broken(path, value)
        response = api.put("/v1/configs/prod/doc", json={"kind": "ModelEndpoints", "spec": spec})
        if response.status_code != 422:
            failures.append(f"{what}: answered {response.status_code}")
            continue
        got = [detail["loc"] for detail in response.json()["error"]["details"]]
        if ["spec", *loc] not in got:
            failures.append(f"{what}: expected {['spec', *loc]}, got {got}")
    assert not failures, "\n".join(failures)
    assert api.get("/v1/configs/prod/doc").status_code == 404


@pytest.mark.parametrize(("what", "path", "value", "loc"), INVALID, ids=[i[0] for i in INVALID])
def test_the_sdks_model_refuses_the_same(what: str, path: Any, value: Any, loc: list[Any]) -> None:
    spec = broken(path, value)
    if what.startswith("unknown"):
        ModelEndpoints.model_validate(spec)  # the SDK ignores fields it does not know
        return
    with pytest.raises(ValidationError) as info:
        ModelEndpoints.model_validate(spec)
    assert tuple(loc) in [e["loc"] for e in info.value.errors()]


def test_a_v1_document_means_the_same() -> None:
    v1 = ModelEndpoints.model_validate(
        {"default": "a", "endpoints": {"a": {"base_url": "http://a.test", "model": "m"}}}
    )
    endpoint = v1.endpoints["a"]
    assert (v1.groups, v1.tasks, endpoint.breaker, endpoint.adaptive) == ({}, {}, None, None)
    timeout = endpoint.timeout
    assert (timeout.first_token, timeout.idle, timeout.total) == (None, None, None)
    assert endpoint.retry.on_status is None  # 429 and every 5xx, as in v1
