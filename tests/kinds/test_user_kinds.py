"""User-defined kinds over the wire (a real service on a real etcd): register, replace,
refuse, check compatibility, delete, and every document capability for their documents."""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import pytest
from badinput.badtools import StoreProbe, assert_error_shape
from kinds.kindtools import AGENT_ROLES, agent_roles, schema_with

from configsvc.embedded.process import EtcdProcess

KIND = "/v1/schemas/AgentRoles"
DOC = "/v1/configs/prod/agents"


def register(api: httpx.Client, schema: dict[str, Any] = AGENT_ROLES, **extra: Any) -> Any:
    response = api.put(KIND, json={"schema": schema, **extra})
    assert response.status_code in (200, 201), response.text
    return response.json()


def put_doc(api: httpx.Client, spec: dict[str, Any], path: str = DOC) -> httpx.Response:
    return api.put(path, json={"kind": "AgentRoles", "spec": spec})


@pytest.fixture
def probe(etcd: EtcdProcess) -> Any:
    found = StoreProbe(etcd)
    yield found
    found.close()


def test_register_list_and_read_back(api: httpx.Client) -> None:
    created = api.put(KIND, json={"schema": AGENT_ROLES, "description": "roles", "message": "m1"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["kind"], body["builtin"], body["version"], body["changed"]) == (
        "AgentRoles",
        False,
        1,
        True,
    )
    assert body["updated_by"] == "admin" and body["message"] == "m1"
    listed = {item["kind"]: item for item in api.get("/v1/schemas").json()["items"]}
    assert listed["AgentRoles"]["builtin"] is False
    assert all(listed[name]["builtin"] for name in ("ModelEndpoints", "RateLimits", "AuthKeys"))
    assert all(listed[name]["version"] == 1 for name in ("ModelEndpoints", "AgentRoles"))
    one = api.get(KIND).json()
    assert one["schema"] == AGENT_ROLES
    # as given: the key order too (generated models and editors keep it)
    assert list(one["schema"]) == list(AGENT_ROLES)
    assert one["description"] == "roles"


def test_equal_put_writes_nothing_and_versions_never_repeat(
    api: httpx.Client, probe: StoreProbe
) -> None:
    register(api)
    before = probe.revision()
    again = api.put(KIND, json={"schema": AGENT_ROLES})
    assert again.status_code == 200 and again.json()["changed"] is False
    assert again.json()["version"] == 1
    assert probe.revision() == before
    stricter = schema_with(max_concurrency={"type": "integer", "minimum": 1, "maximum": 8})
    assert register(api, stricter)["version"] == 2
    assert api.delete(KIND).status_code == 204
    assert api.get(KIND).status_code == 404
    assert "AgentRoles" not in {i["kind"] for i in api.get("/v1/schemas").json()["items"]}
    recreated = api.put(KIND, json={"schema": AGENT_ROLES})
    assert recreated.status_code == 201
    assert recreated.json()["version"] == 4  # 1, 2, deleted as 3
    history = api.get(f"{KIND}/history").json()["items"]
    assert [(h["version"], h["action"]) for h in history] == [
        (4, "put"),
        (3, "delete"),
        (2, "put"),
        (1, "put"),
    ]
    old = api.get(f"{KIND}/versions/2").json()
    assert old["schema"] == stricter and old["action"] == "put"
    assert api.get(f"{KIND}/versions/3").status_code == 404


def test_documents_are_validated_with_field_paths(api: httpx.Client) -> None:
    register(api)
    assert put_doc(api, agent_roles()).status_code == 201
    role = ["spec", "roles", "a"]
    cases = [
        ({"roles": {"a": {"model": ""}}}, [*role, "model"]),
        ({"roles": {"a": {"model": "m", "max_concurrency": 0}}}, [*role, "max_concurrency"]),
        ({"roles": {"a": {"model": "m", "skils": []}}}, [*role, "skils"]),
        ({"roles": {"a": {}}}, [*role, "model"]),
        ({"roles": {"a": {"model": 5}}}, [*role, "model"]),
        ({}, ["spec", "roles"]),
    ]
    for spec, loc in cases:
        response = put_doc(api, spec, "/v1/configs/prod/other")
        assert response.status_code == 422, (spec, response.text)
        assert_error_shape(response, 422)
        assert loc in [d["loc"] for d in response.json()["error"]["details"]], response.text
    assert api.get("/v1/configs/prod/other").status_code == 404
    dry = api.put(
        "/v1/configs/prod/other",
        params={"dry_run": "true"},
        json={"kind": "AgentRoles", "spec": agent_roles()},
    )
    assert dry.status_code == 201 and dry.json()["dry_run"] is True
    unknown = api.put("/v1/configs/prod/x", json={"kind": "NoSuchKind", "spec": {}})
    assert unknown.status_code == 422 and unknown.json()["error"]["details"][0]["loc"] == ["kind"]


def test_errors_never_quote_the_value(api: httpx.Client) -> None:
    schema = schema_with(
        model={"type": "string", "pattern": "^[a-z-]+$"},
        api_token={"type": "string", "x-configsvc-secret": True, "minLength": 40},
    )
    register(api, schema)
    secret = "tok-DO-NOT-ECHO-4411"
    bad = {"roles": {"a": {"model": "NOT-LOWER-ECHO-9", "api_token": secret}}}
    response = put_doc(api, bad)
    assert response.status_code == 422
    assert secret not in response.text and "NOT-LOWER-ECHO-9" not in response.text


def _obj(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


LOCAL_DEFS_CYCLE = {
    "type": "object",
    "$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}},
    "properties": {"x": {"$ref": "#/$defs/a"}},
}
DRAFT_7 = {"type": "object", "$schema": "http://json-schema.org/draft-07/schema#"}
BAD_SCHEMAS: list[tuple[dict[str, Any], list[str], str]] = [
    (_obj(a={"type": "strnig"}), ["schema", "properties", "a", "type"], "not valid"),
    ({"type": "array"}, ["schema", "type"], '"type": "object"'),
    ({"properties": {}}, ["schema", "type"], '"type": "object"'),
    ({"type": "object", "$ref": "https://example.com/s.json"}, ["schema", "$ref"], "local"),
    (_obj(a={"$ref": "other.json#/x"}), ["schema", "properties", "a", "$ref"], "local"),
    (DRAFT_7, ["schema", "$schema"], "2020-12"),
    (
        _obj(a={"type": "string", "pattern": "^(?=a)a+$"}),
        ["schema", "properties", "a", "pattern"],
        "linear",
    ),
    (
        _obj(a={"type": "integer", "x-configsvc-secret": True}),
        ["schema", "properties", "a", "type"],
        "string",
    ),
    (LOCAL_DEFS_CYCLE, ["schema", "$defs", "a"], "cycle"),
    (_obj(x={"$ref": "#/$defs/missing"}), ["schema", "properties", "x", "$ref"], "names nothing"),
]


@pytest.mark.parametrize(("schema", "loc", "words"), BAD_SCHEMAS)
def test_bad_schemas_are_refused(
    api: httpx.Client, probe: StoreProbe, schema: dict[str, Any], loc: list[str], words: str
) -> None:
    before = probe.revision()
    response = api.put(KIND, json={"schema": schema})
    assert response.status_code == 422, response.text
    assert_error_shape(response, 422)
    error = response.json()["error"]
    assert words in error["message"], error
    assert error["details"][0]["loc"] == loc, error
    assert probe.revision() == before


def _exploding(levels: int) -> dict[str, Any]:
    defs = {}
    for i in range(levels):
        nxt = {"$ref": f"#/$defs/d{i + 1}"} if i + 1 < levels else {"type": "string"}
        defs[f"d{i}"] = {"anyOf": [nxt, {"allOf": [nxt, {"minLength": 2}]}]}
    return {"type": "object", "properties": {"x": {"$ref": "#/$defs/d0"}}, "$defs": defs}


def test_schemas_too_costly_to_validate_are_refused(api: httpx.Client) -> None:
    response = api.put(KIND, json={"schema": _exploding(20)})
    assert response.status_code == 422
    assert "subschema" in response.json()["error"]["message"]
    recursive = {
        "type": "object",
        "anyOf": [
            {"properties": {"n": {"$ref": "#"}}},
            {"properties": {"n": {"$ref": "#"}}},
        ],
    }
    response = api.put(KIND, json={"schema": recursive})
    assert response.status_code == 422, response.text
    # a recursive tree schema is fine: one subschema per value at any depth
    children = {"type": "array", "items": {"$ref": "#"}}
    tree = _obj(name={"type": "string"}, children=children)
    assert api.put(KIND, json={"schema": tree}).status_code == 201


def test_names_size_and_builtins(api: httpx.Client) -> None:
    for name in ("agentRoles", "Agent-Roles", "A" * 65, "Ägent"):
        response = api.put(f"/v1/schemas/{name}", json={"schema": AGENT_ROLES})
        assert response.status_code == 400, (name, response.text)
    assert api.put(f"/v1/schemas/{'A' * 64}", json={"schema": AGENT_ROLES}).status_code == 201
    for builtin in ("ModelEndpoints", "RateLimits", "AuthKeys"):
        replaced = api.put(f"/v1/schemas/{builtin}", json={"schema": AGENT_ROLES})
        assert replaced.status_code == 409 and builtin in replaced.json()["error"]["message"]
        assert api.delete(f"/v1/schemas/{builtin}").status_code == 409
    big = copy.deepcopy(AGENT_ROLES)
    big["description"] = "x" * (64 * 1024)
    too_big = api.put(KIND, json={"schema": big})
    assert too_big.status_code == 422
    assert "the limit is 65536" in too_big.json()["error"]["message"]
    assert api.delete("/v1/schemas/NeverWas").status_code == 404
    assert api.put(KIND, json={"schema": AGENT_ROLES, "extra": 1}).status_code == 422


def test_only_admins_change_kinds(service: Any, api: httpx.Client) -> None:
    created = api.post("/v1/tokens", json={"name": "w", "role": "writer", "namespaces": ["*"]})
    with service.client(created.json()["token"]) as writer:
        assert writer.put(KIND, json={"schema": AGENT_ROLES}).status_code == 403
        register(api)
        assert writer.delete(KIND).status_code == 403
        assert writer.get(KIND).status_code == 200


def test_incompatible_schema_names_each_document(api: httpx.Client, probe: StoreProbe) -> None:
    register(api)
    assert put_doc(api, agent_roles(concurrency=10)).status_code == 201
    assert put_doc(api, agent_roles(concurrency=2), "/v1/configs/staging/agents").status_code == 201
    assert put_doc(api, agent_roles(concurrency=20), "/v1/configs/prod/more").status_code == 201
    stricter = schema_with(max_concurrency={"type": "integer", "minimum": 1, "maximum": 8})
    before = probe.revision()
    for params in ({"dry_run": "true"}, {}):
        refused = api.put(KIND, params=params, json={"schema": stricter})
        assert refused.status_code == 422, refused.text
        details = refused.json()["error"]["details"]
        assert {d["document"] for d in details} == {"prod/agents", "prod/more"}
        assert all(d["loc"] == ["spec", "roles", "planner", "max_concurrency"] for d in details)
    assert probe.revision() == before
    assert api.get(KIND).json()["version"] == 1
    # a compatible change passes, dry run first
    looser = schema_with(max_concurrency={"type": "integer", "minimum": 1})
    dry = api.put(KIND, params={"dry_run": "true"}, json={"schema": looser})
    assert dry.status_code == 200 and dry.json()["dry_run"] is True and dry.json()["version"] == 2
    assert probe.revision() == before
    assert register(api, looser)["version"] == 2


def test_deleting_a_kind_in_use_is_409(api: httpx.Client, probe: StoreProbe) -> None:
    register(api)
    put_doc(api, agent_roles())
    put_doc(api, agent_roles(), "/v1/configs/staging/agents")
    before = probe.revision()
    refused = api.delete(KIND)
    assert refused.status_code == 409
    assert_error_shape(refused, 409)
    details = refused.json()["error"]["details"]
    assert [d["document"] for d in details] == ["prod/agents", "staging/agents"]
    assert probe.revision() == before
    api.delete(DOC)
    api.delete("/v1/configs/staging/agents")
    assert api.delete(KIND).status_code == 204
    again = put_doc(api, agent_roles())
    assert again.status_code == 422 and again.json()["error"]["details"][0]["loc"] == ["kind"]


def test_history_versions_diff_and_rollback(api: httpx.Client) -> None:
    register(api, schema_with(legacy={"type": "string"}))
    first = agent_roles(concurrency=2)
    first["roles"]["coder"]["legacy"] = "x"
    assert put_doc(api, first).status_code == 201
    assert put_doc(api, agent_roles(concurrency=3)).status_code == 200
    history = api.get(f"{DOC}/history").json()["items"]
    assert [h["version"] for h in history] == [2, 1] and history[0]["kind"] == "AgentRoles"
    v1 = api.get(f"{DOC}/versions/1").json()
    assert v1["spec"]["roles"]["coder"]["legacy"] == "x"
    # the schema drops `legacy` (no stored document uses it now)
    register(api, AGENT_ROLES)
    refused = api.post(f"{DOC}/rollback", json={"to_version": 1})
    assert refused.status_code == 422, refused.text
    assert ["spec", "roles", "coder", "legacy"] in [
        d["loc"] for d in refused.json()["error"]["details"]
    ]
    assert put_doc(api, agent_roles(concurrency=5)).status_code == 200
    rolled = api.post(f"{DOC}/rollback", json={"to_version": 2})
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["spec"]["roles"]["planner"]["max_concurrency"] == 3


def test_a_document_may_change_kind(api: httpx.Client) -> None:
    register(api)
    assert put_doc(api, agent_roles()).status_code == 201
    limits = {"limits": {"chat": {"requests_per_second": 5}}}
    assert api.put(DOC, json={"kind": "RateLimits", "spec": limits}).status_code == 200
    assert api.delete(KIND).status_code == 204


def test_kind_answers_match_the_openapi_description(api: httpx.Client) -> None:
    openapi = api.get("/openapi.json").json()

    def check(method: str, path: str, response: httpx.Response) -> None:
        import jsonschema_rs

        declared = openapi["paths"][path][method]["responses"][str(response.status_code)]
        schema = {
            **declared["content"]["application/json"]["schema"],
            "components": openapi["components"],
        }
        errors = [
            e.message for e in jsonschema_rs.validator_for(schema).iter_errors(response.json())
        ]
        assert not errors, (path, response.status_code, errors)

    kind = "/v1/schemas/{kind}"
    check("put", kind, api.put(KIND, json={"schema": AGENT_ROLES}))
    check(
        "put",
        kind,
        api.put(
            KIND, params={"dry_run": "true"}, json={"schema": schema_with(x={"type": "string"})}
        ),
    )
    check("put", kind, api.put(KIND, json={"schema": {"type": "strnig"}}))
    check("get", kind, api.get(KIND))
    check("get", "/v1/schemas", api.get("/v1/schemas"))
    check("get", kind + "/history", api.get(f"{KIND}/history"))
    check("get", kind + "/versions/{version}", api.get(f"{KIND}/versions/1"))
    put_doc(api, agent_roles())
    check("delete", kind, api.delete(KIND))
    assert json.loads(api.get(KIND).text)["kind"] == "AgentRoles"
