"""Every refused request answers the contract's error and changes nothing in the store."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.api.helpers import (
    RATE_SPEC,
    body,
    error_code,
    locs,
    model_spec,
    put_rate,
)

MAX_BODY = 512 * 1024


@pytest.fixture
def seeded(api: httpx.Client) -> httpx.Client:
    """The admin client, with prod/limits at version 2 and staging/other at version 1."""
    put_rate(api, "prod", "limits", rps=1)
    put_rate(api, "prod", "limits", rps=2)
    put_rate(api, "staging", "other", rps=3)
    return api


def padded_body(size: int) -> bytes:
    """A valid RateLimits PUT body of exactly `size` bytes (padded in a limit's name)."""

    def encode(pad: int) -> bytes:
        spec = {"limits": {"x" * pad: {"requests_per_second": 1}}}
        return json.dumps(body("RateLimits", spec)).encode()

    raw = encode(size - len(encode(0)))
    assert len(raw) == size
    return raw


def test_malformed_json_is_400(seeded: httpx.Client, unchanged) -> None:
    snapshot = unchanged("prod", "staging")
    for raw in (b'{"kind": "RateLimits", "spec": ', b"not json", b"\xff\xfe", b""):
        response = seeded.put(
            "/v1/configs/prod/limits", content=raw, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400, (raw, response.text)
        assert error_code(response) == "bad_request"
    snapshot.check()


def test_non_standard_json_numbers_are_400(seeded: httpx.Client, unchanged) -> None:
    """NaN and Infinity are not JSON: stored, they would break every later read."""
    snapshot = unchanged("prod", "staging")
    for constant in ("NaN", "Infinity", "-Infinity"):
        template = json.dumps(
            body("RateLimits", {"limits": {"chat": {"requests_per_second": "HERE"}}})
        )
        raw = template.replace('"HERE"', constant)
        json.loads(raw)  # Python's own parser takes it: the service must not
        for name in ("limits", "new-doc"):
            response = seeded.put(
                f"/v1/configs/prod/{name}",
                content=raw,
                headers={"Content-Type": "application/json"},
            )
            assert response.status_code == 400, (constant, response.status_code, response.text)
            assert error_code(response) == "bad_request"
    snapshot.check()


def test_body_that_is_not_an_object_is_refused(seeded: httpx.Client, unchanged) -> None:
    snapshot = unchanged("prod", "staging")
    for payload in ([1, 2], "text", 3, None):
        response = seeded.put("/v1/configs/prod/limits", json=payload)
        assert response.status_code in (400, 422), response.text
        error_code(response)
    snapshot.check()


def test_body_over_512_kib_is_413_with_content_length(seeded: httpx.Client, unchanged) -> None:
    snapshot = unchanged("prod", "staging")
    response = seeded.put(
        "/v1/configs/prod/limits",
        content=padded_body(MAX_BODY + 1),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413, response.text
    assert error_code(response) == "payload_too_large"
    snapshot.check()


def test_body_over_512_kib_is_413_when_chunked(seeded: httpx.Client, unchanged) -> None:
    raw = padded_body(MAX_BODY + 1)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(raw), 64 * 1024):
            yield raw[start : start + 64 * 1024]

    snapshot = unchanged("prod", "staging")
    response = seeded.put(
        "/v1/configs/prod/limits", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 413, response.text
    snapshot.check()


def test_body_of_exactly_512_kib_is_accepted(seeded: httpx.Client) -> None:
    """The limit is on the body: one just at it stores (document + history stay under etcd's)."""
    response = seeded.put(
        "/v1/configs/prod/big",
        content=padded_body(MAX_BODY),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.text[:300]
    stored = seeded.get("/v1/configs/prod/big").json()["spec"]["limits"]
    assert len(next(iter(stored))) > MAX_BODY - 200


def test_body_naming_another_document_is_400(seeded: httpx.Client, unchanged) -> None:
    snapshot = unchanged("prod", "staging")
    for extra in ({"namespace": "staging"}, {"name": "other"}, {"namespace": "x", "name": "y"}):
        payload = body("RateLimits", RATE_SPEC, **extra)
        response = seeded.put("/v1/configs/prod/limits", json=payload)
        assert response.status_code == 400, (extra, response.text)
        assert error_code(response) == "bad_request"
    snapshot.check()


BAD_NAMES = ["Prod", "-x", "x-", "a" * 64, "a b", "_x", ".x", "x.", "Ünï"]


def test_bad_namespace_or_name_is_400(seeded: httpx.Client, unchanged) -> None:
    snapshot = unchanged("prod", "staging")
    good = body("RateLimits", RATE_SPEC)
    for bad in BAD_NAMES:
        requests = [
            ("PUT", f"/v1/configs/{bad}/limits", good),
            ("PUT", f"/v1/configs/prod/{bad}", good),
            ("GET", f"/v1/configs/{bad}/limits", None),
            ("GET", f"/v1/configs/prod/{bad}", None),
            ("GET", f"/v1/configs/{bad}", None),
            ("DELETE", f"/v1/configs/prod/{bad}", None),
            ("GET", f"/v1/configs/prod/{bad}/history", None),
            ("GET", f"/v1/configs/prod/{bad}/versions/1", None),
            ("POST", f"/v1/configs/prod/{bad}/rollback", {"to_version": 1}),
        ]
        for method, path, payload in requests:
            response = seeded.request(method, path, json=payload)
            assert response.status_code == 400, (method, path, response.status_code, response.text)
            assert error_code(response) == "bad_request"
    snapshot.check()


def test_longest_valid_name_is_accepted(seeded: httpx.Client) -> None:
    name = "a" * 63
    assert put_rate(seeded, name, name).status_code == 201
    assert seeded.get(f"/v1/configs/{name}/{name}").status_code == 200


def _raw_request(url: str, method: str, target: str, token: str, payload: bytes) -> int:
    """Send a request with `target` exactly as given (no client-side path normalisation)."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        head = (
            f"{method} {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
        )
        sock.sendall(head.encode() + payload)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line = answer.split(b"\r\n", 1)[0].decode()
    return int(status_line.split()[1])


TRAVERSALS = [
    "/v1/configs/..%2fprod/limits",
    "/v1/configs/prod/..%2flimits",
    "/v1/configs/prod/%2e%2e",
    "/v1/configs/%2e%2e/limits",
    "/v1/configs/prod/..%2f..%2fhist%2fprod",
    "/v1/configs/prod%2f..%2fstaging/other",
    "/v1/configs/prod/a%2fb",
    "/v1/configs/prod/a%00b",
    "/v1/configs/prod/../staging/x",
]


def test_path_traversal_is_refused(service, seeded: httpx.Client, unchanged) -> None:
    snapshot = unchanged("prod", "staging")
    payload = json.dumps(body("RateLimits", {"limits": {}})).encode()
    for target in TRAVERSALS:
        status = _raw_request(service.url, "PUT", target, service.admin_token, payload)
        assert status in (400, 404, 405), (target, status)
        status = _raw_request(service.url, "DELETE", target, service.admin_token, b"")
        assert status in (400, 404, 405), (target, status)
    snapshot.check()
    assert seeded.get("/v1/namespaces").json()["items"] == ["prod", "staging"]


def test_invalid_spec_is_422_with_paths(seeded: httpx.Client, unchanged) -> None:
    snapshot = unchanged("prod", "staging")
    spec = model_spec()
    spec["default"] = "nowhere"
    response = seeded.put("/v1/configs/prod/limits", json=body("ModelEndpoints", spec))
    assert response.status_code == 422
    assert error_code(response) == "validation_failed"
    assert ["spec", "default"] in locs(response)
    snapshot.check()


def test_unknown_fields_are_refused_with_their_path(seeded: httpx.Client, unchanged) -> None:
    snapshot = unchanged("prod", "staging")
    spec = model_spec()
    spec["endpoints"]["local-34b"]["timeot"] = {"read": 5}
    response = seeded.put("/v1/configs/prod/models", json=body("ModelEndpoints", spec))
    assert response.status_code == 422, response.text
    assert ["spec", "endpoints", "local-34b", "timeot"] in locs(response)

    top = seeded.put("/v1/configs/prod/models", json={**body("RateLimits", RATE_SPEC), "x": 1})
    assert top.status_code == 422, top.text
    assert any(loc[-1] == "x" for loc in locs(top)), locs(top)
    snapshot.check()


def test_invalid_conditional_headers_are_refused(seeded: httpx.Client, unchanged) -> None:
    snapshot = unchanged("prod", "staging")
    good = body("RateLimits", {"limits": {}})
    for headers in ({"If-Match": "not-a-tag"}, {"If-None-Match": '"3"'}):
        response = seeded.put("/v1/configs/prod/limits", json=good, headers=headers)
        assert response.status_code in (400, 412), (headers, response.text)
        error_code(response)
    snapshot.check()


def test_bad_query_parameters_are_400(seeded: httpx.Client, unchanged) -> None:
    snapshot = unchanged("prod", "staging")
    response = seeded.put(
        "/v1/configs/prod/limits", params={"dry_run": "maybe"}, json=body("RateLimits", RATE_SPEC)
    )
    assert response.status_code == 400, response.text
    for limit in ("0", "-1", "x"):
        history = seeded.get("/v1/configs/prod/limits/history", params={"limit": limit})
        assert history.status_code == 400, (limit, history.text)
        assert error_code(history) == "bad_request"
    version = seeded.get("/v1/configs/prod/limits/versions/abc")
    assert version.status_code in (400, 404)
    snapshot.check()


def test_unknown_routes_and_methods_answer_json_errors(seeded: httpx.Client, unchanged) -> None:
    snapshot = unchanged("prod", "staging")
    missing = seeded.get("/v1/nothing-here")
    assert missing.status_code == 404
    error_code(missing)
    wrong = seeded.post("/v1/configs/prod/limits", json=body("RateLimits", RATE_SPEC))
    assert wrong.status_code == 405
    error_code(wrong)
    snapshot.check()
