"""Tokens: creation and listing, roles, namespace patterns, revocation on every instance."""

from __future__ import annotations

import httpx
import pytest
from support import start_service

from tests.api.helpers import body, error_code, put_rate, rate_spec, raw_state

NAMESPACES = ["prod", "prod-2", "staging", "team-a", "team-a-x", "team-a-y", "team-b-x"]


def routes(ns: str, name: str = "limits") -> dict[str, list[tuple[str, str, object]]]:
    """The document routes by the role they need."""
    doc = f"/v1/configs/{ns}/{name}"
    return {
        "reader": [
            ("GET", f"/v1/configs/{ns}", None),
            ("GET", doc, None),
            ("GET", f"{doc}/history", None),
            ("GET", f"{doc}/versions/1", None),
        ],
        "writer": [
            ("PUT", doc, body("RateLimits", rate_spec(42))),
            ("POST", f"{doc}/rollback", {"to_version": 1}),
            ("DELETE", doc, None),
        ],
    }


def test_create_token_answers_the_token_once(api: httpx.Client, service) -> None:
    response = api.post(
        "/v1/tokens", json={"name": "ci-reader", "role": "reader", "namespaces": ["prod"]}
    )
    assert response.status_code == 201, response.text
    created = response.json()
    token = created["token"]
    assert created["name"] == "ci-reader"
    assert created["role"] == "reader"
    assert created["namespaces"] == ["prod"]
    assert created["secrets"] is False
    assert "sha256" not in created

    listing = api.get("/v1/tokens")
    assert listing.status_code == 200
    items = listing.json()["items"]
    assert [item["name"] for item in items] == ["ci-reader"]
    assert "token" not in items[0]
    assert "sha256" not in items[0]
    secret_part = token.rsplit(".", 1)[-1]
    assert secret_part not in listing.text
    # stored hashed: the secret is nowhere in etcd
    assert all(secret_part not in value for value, _rev in raw_state(service.etcd).values())

    with service.client(token) as client:
        assert client.get("/v1/configs/prod").status_code == 200


def test_token_names_and_bodies_are_checked(api: httpx.Client, unchanged) -> None:
    api.post("/v1/tokens", json={"name": "dup", "role": "reader", "namespaces": ["*"]})
    snapshot = unchanged()
    duplicate = api.post("/v1/tokens", json={"name": "dup", "role": "writer", "namespaces": ["*"]})
    assert duplicate.status_code == 409
    assert error_code(duplicate) == "conflict"
    admin = api.post("/v1/tokens", json={"name": "admin", "role": "admin", "namespaces": ["*"]})
    assert admin.status_code in (400, 403, 409, 422), admin.text
    error_code(admin)
    for bad in (
        {"name": "Bad Name", "role": "reader", "namespaces": ["*"]},
        {"name": "x", "role": "root", "namespaces": ["*"]},
        {"name": "x", "role": "reader", "namespaces": []},
        {"name": "x", "role": "reader", "namespaces": ["Prod/x"]},
        {"name": "x", "role": "reader"},
        {"name": "x", "role": "reader", "namespaces": ["*"], "extra": 1},
        {"role": "reader", "namespaces": ["*"]},
    ):
        response = api.post("/v1/tokens", json=bad)
        assert response.status_code in (400, 422), (bad, response.text)
        error_code(response)
    assert api.delete("/v1/tokens/nobody").status_code == 404
    snapshot.check()
    assert [item["name"] for item in api.get("/v1/tokens").json()["items"]] == ["dup"]


def test_roles_are_enforced(service, api: httpx.Client, make_token, unchanged) -> None:
    put_rate(api, "prod", "limits", rps=1)
    put_rate(api, "prod", "limits", rps=2)
    reader = make_token("reader", "reader", ["*"])
    writer = make_token("writer", "writer", ["*"])
    snapshot = unchanged("prod")
    with service.client(reader) as client:
        for method, path, payload in routes("prod")["reader"]:
            response = client.request(method, path, json=payload)
            assert response.status_code == 200, (method, path, response.text)
        assert client.get("/v1/namespaces").status_code == 200
        assert client.get("/v1/schemas").status_code == 200
        for method, path, payload in routes("prod")["writer"]:
            response = client.request(method, path, json=payload)
            assert response.status_code == 403, (method, path, response.text)
            assert error_code(response) == "forbidden"
        dry = client.put(
            "/v1/configs/prod/limits",
            params={"dry_run": "true"},
            json=body("RateLimits", rate_spec(3)),
        )
        assert dry.status_code == 403
    for token in (reader, writer):
        with service.client(token) as client:
            created = client.post(
                "/v1/tokens", json={"name": "sneaky", "role": "admin", "namespaces": ["*"]}
            )
            assert created.status_code == 403
            assert client.get("/v1/tokens").status_code == 403
            assert client.delete("/v1/tokens/reader").status_code == 403
    snapshot.check()

    with service.client(writer) as client:
        for method, path, payload in routes("prod")["writer"]:
            response = client.request(method, path, json=payload)
            assert response.status_code in (200, 201), (method, path, response.text)
    history = api.get("/v1/configs/prod/limits/history").json()["items"]
    assert [item["updated_by"] for item in history[:3]] == ["writer"] * 3


@pytest.mark.parametrize(
    ("patterns", "allowed"),
    [
        (["prod"], ["prod"]),
        (["team-a-*"], ["team-a-x", "team-a-y"]),
        (["*"], NAMESPACES),
        (["prod", "team-a-*"], ["prod", "team-a-x", "team-a-y"]),
    ],
)
def test_namespace_patterns_are_enforced_on_every_route(
    service,
    api: httpx.Client,
    make_token,
    unchanged,
    patterns: list[str],
    allowed: list[str],
) -> None:
    refused = [ns for ns in NAMESPACES if ns not in allowed]
    for ns in NAMESPACES:
        put_rate(api, ns, "limits", rps=1)
        put_rate(api, ns, "limits", rps=2)
    token = make_token("scoped", "writer", patterns)
    with service.client(token) as client:
        visible = client.get("/v1/namespaces")
        assert visible.status_code == 200
        assert visible.json()["items"] == allowed

        snapshot = unchanged(*NAMESPACES)
        for ns in refused:
            for method, path, payload in routes(ns)["reader"] + routes(ns)["writer"]:
                response = client.request(method, path, json=payload)
                assert response.status_code == 403, (patterns, method, path, response.text)
                assert error_code(response) == "forbidden"
            # a namespace without documents is refused just the same
            assert client.get(f"/v1/configs/empty-{ns}").status_code == 403
        snapshot.check()

        for ns in allowed:
            for method, path, payload in routes(ns)["reader"] + routes(ns)["writer"]:
                response = client.request(method, path, json=payload)
                assert response.status_code in (200, 201), (patterns, method, path, response.text)


BAD_AUTHORIZATIONS: list[str | None] = [
    None,
    "",
    "Bearer",
    "Basic dXNlcjpwYXNz",
    "Token test-admin-token-0123456789",
    "Bearer wrong",
    "Bearer test-admin-token-012345678",
    "Bearer cst.nobody.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "Bearer cst.reader.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "Bearer cst..x",
    "Bearer cst.Bad Name.x",
]


def test_missing_malformed_and_bad_tokens_are_401(
    service, api: httpx.Client, make_token, unchanged
) -> None:
    make_token("reader", "reader", ["*"])
    put_rate(api, "prod", "limits")
    snapshot = unchanged("prod")
    for authorization in BAD_AUTHORIZATIONS:
        headers = {} if authorization is None else {"Authorization": authorization}
        with httpx.Client(base_url=service.url, headers=headers, timeout=10) as client:
            for method, path, payload in [
                *routes("prod")["reader"],
                *routes("prod")["writer"],
                ("GET", "/v1/namespaces", None),
                ("GET", "/v1/tokens", None),
                ("POST", "/v1/tokens", {"name": "x", "role": "admin", "namespaces": ["*"]}),
                ("GET", "/v1/schemas", None),
            ]:
                response = client.request(method, path, json=payload)
                assert response.status_code == 401, (authorization, method, path, response.text)
                assert error_code(response) == "unauthorized"
                presented = (authorization or "").partition(" ")[2].strip()
                if len(presented) > 8:
                    assert presented not in response.text, "a 401 echoed the token"
    snapshot.check()


def test_revoked_token_stops_at_once_on_every_instance(
    service, api: httpx.Client, make_token, etcd
) -> None:
    put_rate(api, "prod", "limits")
    token = make_token("short-lived", "writer", ["prod"])
    second = start_service(etcd)
    try:
        with service.client(token) as one, second.client(token) as two:
            assert one.get("/v1/configs/prod/limits").status_code == 200
            assert two.get("/v1/configs/prod/limits").status_code == 200
            revoked = api.delete("/v1/tokens/short-lived")
            assert revoked.status_code == 200, revoked.text
            for client in (one, two):
                assert client.get("/v1/configs/prod/limits").status_code == 401
                assert put_rate(client, "prod", "limits", rps=9).status_code == 401
        assert api.get("/v1/configs/prod/limits").json()["version"] == 1
        assert api.get("/v1/tokens").json()["items"] == []
        # revoked on the second instance, refused on the first
        again = make_token("short-lived", "reader", ["prod"])
        with second.client() as admin_two, service.client(again) as one:
            assert one.get("/v1/configs/prod/limits").status_code == 200
            assert admin_two.delete("/v1/tokens/short-lived").status_code == 200
            assert one.get("/v1/configs/prod/limits").status_code == 401
        # the old token of a re-created name does not come back
        with service.client(token) as old:
            assert old.get("/v1/configs/prod/limits").status_code == 401
    finally:
        second.stop()


def test_secrets_flag_is_listed_and_honoured(service, api: httpx.Client, make_token) -> None:
    make_token("with-secrets", "reader", ["*"], secrets=True)
    make_token("without", "reader", ["*"])
    items = {item["name"]: item for item in api.get("/v1/tokens").json()["items"]}
    assert items["with-secrets"]["secrets"] is True
    assert items["without"]["secrets"] is False


def test_a_token_grants_no_more_than_it_has(api: httpx.Client, service) -> None:
    """An admin token limited to team-a-* without secrets cannot mint a broader token."""
    limited = api.post(
        "/v1/tokens", json={"name": "team-a-admin", "role": "admin", "namespaces": ["team-a-*"]}
    ).json()["token"]
    with service.client(limited) as client:
        for namespaces, secrets in (
            (["*"], False),
            (["prod"], False),
            (["team-*"], False),
            (["team-a-x", "team-b-x"], False),
            (["team-a-x"], True),
        ):
            refused = client.post(
                "/v1/tokens",
                json={
                    "name": "wider",
                    "role": "reader",
                    "namespaces": namespaces,
                    "secrets": secrets,
                },
            )
            assert refused.status_code == 403, (namespaces, secrets, refused.text)
            assert error_code(refused) == "forbidden"
        for name, namespaces in (("narrower", ["team-a-x", "team-a-y-*"]), ("same", ["team-a-*"])):
            created = client.post(
                "/v1/tokens", json={"name": name, "role": "writer", "namespaces": namespaces}
            )
            assert created.status_code == 201, created.text
    names = [item["name"] for item in api.get("/v1/tokens").json()["items"]]
    assert "wider" not in names


def test_whoami_tells_the_token_what_it_may_do(api: httpx.Client, service) -> None:
    assert api.get("/v1/whoami").json() == {
        "name": "admin",
        "role": "admin",
        "namespaces": ["*"],
        "secrets": True,
    }
    token = api.post(
        "/v1/tokens", json={"name": "viewer", "role": "reader", "namespaces": ["prod", "dev-*"]}
    ).json()["token"]
    with service.client(token) as client:
        assert client.get("/v1/whoami").json() == {
            "name": "viewer",
            "role": "reader",
            "namespaces": ["prod", "dev-*"],
            "secrets": False,
        }
    assert httpx.get(f"{service.url}/v1/whoami").status_code == 401
