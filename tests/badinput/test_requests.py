"""Bad requests around the body: huge headers, unknown query parameters, path traversal and
look-alike names, malformed conditional headers, bad watch requests, malformed HTTP.

Where the app answers, the answer is a 4xx in the contract's shape; where uvicorn refuses a
malformed request itself, its own 4xx. Nothing is ever stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import select
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from badinput.badtools import MARKER, rate_body, read_response, request_bytes
from badinput.conftest import Refusals
from support import RunningService, SseReader

from configsvc.api.http import MAX_HEADER_BYTES
from configsvc.api.watch import MAX_WATCH_NAMESPACES
from configsvc.http_protocol import MAX_HEAD_BYTES

JSON = {"Content-Type": "application/json"}
ROLLBACK = b'{"to_version": 1}'
TOKEN = b'{"name": "new-token", "role": "reader", "namespaces": ["*"]}'

ROUTES: list[tuple[str, str, bytes | None]] = [
    ("GET", "/v1/namespaces", None),
    ("GET", "/v1/schemas", None),
    ("GET", "/v1/schemas/RateLimits", None),
    ("GET", "/v1/configs/prod", None),
    ("GET", "/v1/configs/prod/limits", None),
    ("PUT", "/v1/configs/prod/limits", rate_body(9)),
    ("PUT", "/v1/configs/prod/new-doc", rate_body(9)),
    ("DELETE", "/v1/configs/prod/limits", None),
    ("GET", "/v1/configs/prod/limits/history", None),
    ("GET", "/v1/configs/prod/limits/versions/1", None),
    ("POST", "/v1/configs/prod/limits/rollback", ROLLBACK),
    ("GET", "/v1/tokens", None),
    ("POST", "/v1/tokens", TOKEN),
    ("DELETE", "/v1/tokens/nobody", None),
]
"""Every route but the watch, each with a body it would accept."""


def send(refusals: Refusals, method: str, path: str, body: bytes | None, **kw) -> httpx.Response:
    headers = {**JSON, **kw.pop("headers", {})} if body is not None else kw.pop("headers", {})
    return refusals.api.request(method, path, content=body, headers=headers, **kw)


# ---- headers ----------------------------------------------------------------------------


def test_huge_headers_are_431_before_anything_else(refusals: Refusals) -> None:
    variants = {
        "one big header": {"X-Padding": "a" * (MAX_HEADER_BYTES + 1)},
        "many headers": {f"X-H{i}": "a" * 20 for i in range(2_000)},
        "a huge token": {"Authorization": "Bearer " + "a" * (MAX_HEADER_BYTES + 1)},
        "a 1 MiB header": {"X-Padding": "a" * 1024 * 1024},
    }
    for what, headers in variants.items():
        for method, path, body in ROUTES:
            response = send(refusals, method, path, body, headers=headers)
            code = refusals.refused(response, 431, (what, method, path))
            assert code == "headers_too_large"
        reader = SseReader(refusals.service.url, refusals.service.admin_token, ["prod"])
        reader.close()
        watch = refusals.api.get("/v1/watch", params={"namespace": "prod"}, headers=headers)
        assert refusals.refused(watch, 431, (what, "watch")) == "headers_too_large"
    refusals.unchanged()


def test_headers_under_the_limit_are_fine(refusals: Refusals) -> None:
    response = refusals.api.get(
        "/v1/configs/prod", headers={"X-Padding": "a" * (MAX_HEADER_BYTES - 1024)}
    )
    assert response.status_code == 200, response.text


# ---- query parameters -------------------------------------------------------------------


def test_unknown_query_parameters_are_400(refusals: Refusals) -> None:
    """A typo must not pass silently: `?dryrun=true` on a PUT used to store for real."""
    for query in ("dryrun=true", "dry-run=true", "foo=bar", "limit=1&x=1", "=1", "%00=1"):
        for method, path, body in ROUTES:
            response = send(refusals, method, f"{path}?{query}", body)
            assert refusals.refused(response, 400, (query, method, path)) == "bad_request"
            assert "query parameter" in response.json()["error"]["message"]
        watch = refusals.api.get(f"/v1/watch?namespace=prod&{query}")
        assert refusals.refused(watch, 400, (query, "watch")) == "bad_request"
    refusals.unchanged()


def test_a_single_parameter_given_twice_is_400(refusals: Refusals) -> None:
    """`?dry_run=true&dry_run=false` used to be taken as the last one: a real write."""
    cases = [
        ("PUT", "/v1/configs/prod/new-doc?dry_run=true&dry_run=false", rate_body()),
        ("GET", "/v1/configs/prod/limits/history?limit=1&limit=2", None),
    ]
    for method, path, body in cases:
        response = send(refusals, method, path, body)
        assert refusals.refused(response, 400, path) == "bad_request"
    watch = refusals.api.get("/v1/watch?namespace=prod&since=1&since=2")
    assert refusals.refused(watch, 400, "watch") == "bad_request"
    refusals.unchanged()


def test_known_query_parameters_still_work(refusals: Refusals) -> None:
    dry = refusals.api.put(
        "/v1/configs/prod/new-doc?dry_run=true", content=rate_body(), headers=JSON
    )
    assert dry.status_code == 201 and dry.json()["dry_run"] is True, dry.text
    refusals.unchanged()
    history = refusals.api.get("/v1/configs/prod/limits/history", params={"limit": 1})
    assert history.status_code == 200 and len(history.json()["items"]) == 1
    reader = SseReader(
        refusals.service.url, refusals.service.admin_token, ["prod", "prod", "staging"], since=1
    )
    try:
        assert reader.status_code == 200
        assert reader.next().event == "put"
    finally:
        reader.close()


def test_bad_parameter_values_are_400(refusals: Refusals) -> None:
    cases = [
        ("GET", "/v1/configs/prod/limits/history?limit=0", None),
        ("GET", "/v1/configs/prod/limits/history?limit=-1", None),
        ("GET", "/v1/configs/prod/limits/history?limit=%C2%B2", None),
        ("GET", "/v1/configs/prod/limits/history?limit=99999999999999999999999", None),
        ("GET", "/v1/configs/prod/limits/versions/one", None),
        ("GET", "/v1/configs/prod/limits/versions/%C2%B2", None),
        ("PUT", "/v1/configs/prod/new-doc?dry_run=maybe", rate_body()),
        ("GET", "/v1/configs/prod/limits/history?limit=" + "9" * 5_000, None),
    ]
    for method, path, body in cases:
        response = send(refusals, method, path, body)
        assert refusals.refused(response, 400, path) == "bad_request"
    for version in ("9" * 5_000, "-1", "0", "99999999999999999999"):
        response = refusals.api.get(f"/v1/configs/prod/limits/versions/{version}")
        assert refusals.refused(response, None, version) in ("bad_request", "not_found")
    refusals.unchanged()


# ---- names ------------------------------------------------------------------------------

BAD_NAMES = [  # literal "." and ".." segments: httpx removes them (see the raw test below)
    "%2e%2e",
    "%2E%2E",
    ".%2e",
    "..%2f..%2ftok",
    "a%2fb",
    "a%5cb",
    "..%5c..%5ctok",
    "%00",
    "a%00b",
    "a%0d%0aX-Injected:%201",
    "%20a",
    "a%20",
    "-a",
    "a-",
    ".a",
    "a.",
    "_a",
    "PROD",
    "Prod",
    "pr%D0%BEd",  # Cyrillic o
    "%EF%BD%90%EF%BD%92%EF%BD%8F%EF%BD%84",  # fullwidth "prod"
    "prod%E2%80%8B",  # zero-width space
    "prod%CC%81",  # combining accent
    "%E1%B4%98%CA%80%E1%B4%8F%E1%B4%85",  # small capitals
    "%C4%B1",  # dotless i
    "a" * 64,
    "a" * 1_000,
    "%C0%AE%C0%AE",  # overlong "..", not UTF-8
    "%FF",
    "*",
    "prod*",
]


def test_path_traversal_and_look_alike_names_are_refused(refusals: Refusals) -> None:
    """Every bad namespace or name is a 4xx; none reaches the store, whatever the route."""
    for bad in BAD_NAMES:
        paths = [
            ("GET", f"/v1/configs/{bad}", None),
            ("GET", f"/v1/configs/prod/{bad}", None),
            ("GET", f"/v1/configs/{bad}/limits", None),
            ("PUT", f"/v1/configs/prod/{bad}", rate_body()),
            ("PUT", f"/v1/configs/{bad}/limits", rate_body()),
            ("DELETE", f"/v1/configs/prod/{bad}", None),
            ("DELETE", f"/v1/configs/{bad}/limits", None),
            ("GET", f"/v1/configs/prod/{bad}/history", None),
            ("GET", f"/v1/configs/{bad}/limits/versions/1", None),
            ("POST", f"/v1/configs/prod/{bad}/rollback", ROLLBACK),
            ("POST", f"/v1/configs/{bad}/limits/rollback", ROLLBACK),
            ("DELETE", f"/v1/tokens/{bad}", None),
        ]
        for method, path, body in paths:
            response = send(refusals, method, path, body)
            code = refusals.refused(response, None, (bad, method, path))
            assert code in ("bad_request", "not_found"), (bad, method, path, code)
        watch = refusals.api.get(f"/v1/watch?namespace={bad}")
        assert refusals.refused(watch, 400, (bad, "watch")) == "bad_request"
    refusals.unchanged()


def test_bad_names_inside_bodies_are_refused(refusals: Refusals) -> None:
    for bad in ("..", "../tok/admin", "a/b", "A", "a" * 64, "pr\u043ed", "prod\u200b", ""):
        for body in (
            {"namespace": bad, "kind": "RateLimits", "spec": {}},
            {"name": bad, "kind": "RateLimits", "spec": {}},
        ):
            response = refusals.api.put("/v1/configs/prod/limits", json=body)
            assert refusals.refused(response, 400, body) == "bad_request"
        token = {"name": bad, "role": "reader", "namespaces": ["*"]}
        response = refusals.api.post("/v1/tokens", json=token)
        assert refusals.refused(response, None, token) in ("bad_request", "validation_failed")
    for bad in ("../tok/admin", "a/b", "A", "a" * 64, "pr\u043ed", "prod\u200b", "", "?", "["):
        token = {"name": "ok", "role": "reader", "namespaces": [bad]}
        response = refusals.api.post("/v1/tokens", json=token)
        assert refusals.refused(response, 422, token) == "validation_failed"
    refusals.unchanged()


def test_raw_traversal_targets_reach_no_other_route(refusals: Refusals) -> None:
    """uvicorn does not normalise `..` segments, and the routes do not match them."""
    token = refusals.service.admin_token
    targets = [
        ("GET", "/v1/configs/prod/../../tokens"),
        ("DELETE", "/v1/configs/../tokens/nobody"),
        ("PUT", "/v1/configs/prod/../limits"),
        ("PUT", "/v1/configs/prod/./limits"),
        ("PUT", "/v1/configs//limits"),
        ("PUT", "/v1/configs/prod/limits/"),
        ("PUT", "/v1/configs/prod//limits"),
        ("GET", "/v1//configs/prod"),
        ("PUT", "/v1/configs/prod/a\\b"),
        ("PUT", "/v1/configs/prod/%2e%2e/limits"),
    ]
    for method, target in targets:
        body = rate_body() if method == "PUT" else None
        response = refusals.raw(request_bytes(method, target, token=token, headers=JSON, body=body))
        if response.headers.get("content-type", "").startswith("application/json"):
            refusals.refused(response, None, target)
        elif target.endswith("/"):  # Starlette redirects to the path without the slash
            assert response.status_code == 307, (target, response)
        else:  # refused by uvicorn itself
            assert 400 <= response.status_code < 500, (target, response)
        assert refusals.probe.revision() == refusals.revision, target
    refusals.unchanged()


def test_a_name_of_100000_characters_is_refused_by_uvicorn_or_the_app(refusals: Refusals) -> None:
    token = refusals.service.admin_token
    for target in ("/v1/configs/prod/" + "a" * 100_000, "/v1/configs/" + "a" * 100_000 + "/x"):
        response = refusals.raw(request_bytes("PUT", target, token=token, body=rate_body()))
        assert 400 <= response.status_code < 500, response
    refusals.unchanged()


# ---- conditional and resume headers -----------------------------------------------------


def test_non_ascii_digits_in_revisions_are_400(refusals: Refusals) -> None:
    """`"²".isdigit()` is true but `int("²")` fails: such a header used to answer 500."""
    token = refusals.service.admin_token
    for value in (b'"\xb2"', b"\xb9", b'W/"\xb3"', b'"1\xb2"'):
        for method, path, body in (
            ("PUT", "/v1/configs/prod/limits", rate_body(7)),
            ("DELETE", "/v1/configs/prod/limits", None),
        ):
            data = request_bytes(method, path, token=token, headers=JSON, body=body)
            data = data.replace(b"\r\n\r\n", b"\r\nIf-Match: " + value + b"\r\n\r\n", 1)
            response = refusals.raw(data)
            assert refusals.refused(response, 400, (value, method)) == "bad_request"
        data = request_bytes("GET", "/v1/watch?namespace=prod", token=token)
        data = data.replace(b"\r\n\r\n", b"\r\nLast-Event-ID: " + value + b"\r\n\r\n", 1)
        response = refusals.raw(data)
        assert refusals.refused(response, 400, (value, "watch")) == "bad_request"
    long_digits = "1" * 5_000  # int() refuses past 4,300 digits
    data = request_bytes("GET", "/v1/watch?namespace=prod", token=token)
    data = data.replace(b"\r\n\r\n", f"\r\nLast-Event-ID: {long_digits}\r\n\r\n".encode(), 1)
    assert refusals.refused(refusals.raw(data), 400, "long Last-Event-ID") == "bad_request"
    for since in ("%C2%B2", "%D9%A1", "-1", "1.5", "0x10", "9223372036854775807", long_digits):
        response = refusals.api.get(f"/v1/watch?namespace=prod&since={since}")
        assert refusals.refused(response, 400, since) == "bad_request"
    refusals.unchanged()


def test_revisions_out_of_range_are_refused_cleanly(refusals: Refusals) -> None:
    for value in ('"99999999999999999999999"', '"9223372036854775808"', '"0"', f'"{"9" * 5000}"'):
        for method, path, body in (
            ("PUT", "/v1/configs/prod/limits", rate_body(7)),
            ("DELETE", "/v1/configs/prod/limits", None),
        ):
            response = send(refusals, method, path, body, headers={"If-Match": value})
            code = refusals.refused(response, 412, (value, method))
            assert code == "precondition_failed"
    for value in ("garbage", '"abc"', '"-1"', '""'):
        response = send(
            refusals, "PUT", "/v1/configs/prod/limits", rate_body(7), headers={"If-Match": value}
        )
        assert refusals.refused(response, 400, value) == "bad_request"
    for value in ('"1"', "garbage"):
        response = send(
            refusals,
            "PUT",
            "/v1/configs/prod/limits",
            rate_body(7),
            headers={"If-None-Match": value},
        )
        assert refusals.refused(response, 400, value) == "bad_request"
    refusals.unchanged()


def test_a_resume_point_past_the_store_gets_a_snapshot(refusals: Refusals) -> None:
    """The largest revision etcd can hold: not a crash after the 200 (it used to be a
    ValueError once the stream had started), but a snapshot."""
    head = refusals.probe.revision()
    for since in (head + 1, 2**62, 2**63 - 2):
        reader = SseReader(
            refusals.service.url, refusals.service.admin_token, ["prod"], since=since
        )
        try:
            assert reader.status_code == 200
            first = reader.next()
            assert first is not None and first.event == "snapshot", since
        finally:
            reader.close()


# ---- watch ------------------------------------------------------------------------------


def test_bad_watch_requests_are_400_before_the_stream(refusals: Refusals) -> None:
    too_many = "&".join(f"namespace=ns{i}" for i in range(MAX_WATCH_NAMESPACES + 1))
    for query in ("", "namespace=", "namespaces=prod", too_many, "namespace=prod&namespace=.."):
        response = refusals.api.get(f"/v1/watch?{query}")
        assert refusals.refused(response, 400, query[:40]) == "bad_request"
    with refusals.service.client(token="cst.nobody.secret") as stranger:
        assert refusals.refused(stranger.get("/v1/watch?namespace=prod"), 401) == "unauthorized"
    refusals.unchanged()


def test_a_watch_of_the_most_namespaces_allowed_works(refusals: Refusals) -> None:
    """A snapshot or replay reads 2 key ranges per namespace in one etcd transaction
    (etcd allows 128 operations): 129 namespaces used to give an empty 200 stream."""
    namespaces = ["prod"] + [f"ns{i}" for i in range(MAX_WATCH_NAMESPACES - 1)]
    for since in (None, 1):
        reader = SseReader(
            refusals.service.url, refusals.service.admin_token, namespaces, since=since
        )
        try:
            assert reader.status_code == 200
            first = reader.next()
            assert first is not None and first.event in ("snapshot", "put"), since
        finally:
            reader.close()


# ---- malformed HTTP ---------------------------------------------------------------------


def test_malformed_http_is_refused_by_uvicorn(refusals: Refusals) -> None:
    token = refusals.service.admin_token.encode()
    auth = b"Authorization: Bearer " + token + b"\r\n"
    put = b"PUT /v1/configs/prod/x HTTP/1.1\r\nHost: a\r\n" + auth
    body = rate_body()
    requests = {
        "negative length": put + b"Content-Length: -1\r\n\r\n" + body,
        "length and chunked": put
        + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "two lengths": put + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\n" + body,
        "huge chunk size": put
        + b"Transfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\nab\r\n",
        "bad chunk size": put + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n",
        "header without colon": put + b"Oops\r\n\r\n",
        "NUL in a header": put + b"X-A: a\x00b\r\nContent-Length: 2\r\n\r\n{}",
        "raw UTF-8 in the path": b"GET /v1/configs/prod/\xc3\xa9 HTTP/1.1\r\nHost: a\r\n"
        + auth
        + b"\r\n",
        "raw 0xff in the path": b"GET /v1/configs/\xff HTTP/1.1\r\nHost: a\r\n" + auth + b"\r\n",
        "space in the path": b"GET /v1/configs/pr od HTTP/1.1\r\nHost: a\r\n" + auth + b"\r\n",
        "bad method": b"P\x00T /v1/configs/prod/x HTTP/1.1\r\nHost: a\r\n" + auth + b"\r\n",
        "bad version": b"GET /v1/configs/prod HTTP/9.9\r\nHost: a\r\n" + auth + b"\r\n",
    }
    for what, data in requests.items():
        response = refusals.raw(data, timeout=5)
        if response.closed:
            continue  # the server hung up: refused too
        assert 400 <= response.status_code < 500, (what, response)
        if response.headers.get("content-type", "").startswith("application/json"):
            refusals.refused(response, None, what)
    assert refusals.probe.revision() == refusals.revision
    refusals.unchanged()


def test_errors_never_echo_a_presented_token(refusals: Refusals) -> None:
    """A wrong token, or the right one in the wrong place, is never repeated back."""
    secret = MARKER
    for authorization in (
        f"Bearer cst.admin.{secret}",
        f"Bearer cst.nobody.{secret}",
        f"Bearer {secret}",
        f"Basic {secret}",
        f"{secret}",
        f"Bearer cst.{secret}",
    ):
        for method, path, body in ROUTES:
            response = send(refusals, method, path, body, headers={"Authorization": authorization})
            assert refusals.refused(response, 401, (authorization, path)) == "unauthorized"
            assert secret not in response.text
        watch = refusals.api.get(
            "/v1/watch?namespace=prod", headers={"Authorization": authorization}
        )
        assert refusals.refused(watch, 401) == "unauthorized"
        assert secret not in watch.text
    refusals.unchanged()


def stream_head(url: str, start: bytes, filler: bytes, budget: int) -> tuple[int, bytes]:
    """Send `start`, then `filler` again and again without ever ending the head, until the
    server answers or closes, or `budget` bytes are sent. Returns (bytes sent, answer)."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(start)
        sent = len(start)
        answer = b""
        while sent < budget:
            try:
                sock.sendall(filler)
            except OSError:  # closed by the server (reset)
                break
            sent += len(filler)
            readable, _, _ = select.select([sock], [], [], 0.01)
            if readable:
                break
        with contextlib.suppress(OSError):
            sock.settimeout(5)
            while chunk := sock.recv(65536):
                answer += chunk
        return sent, answer


def test_a_head_that_never_ends_is_refused_as_it_arrives(refusals: Refusals) -> None:
    """uvicorn keeps a request's URL and headers in memory until they end: the service
    stops reading past MAX_HEAD_BYTES (431) instead of buffering what a client streams."""
    header_line = b"X-Pad: " + b"a" * 8185 + b"\r\n"
    variants = {
        "endless headers": (b"GET /v1/configs/prod HTTP/1.1\r\nHost: x\r\n", header_line),
        "endless URL": (b"GET /v1/configs/prod?pad=", b"a" * 8192),
    }
    for what, (start, filler) in variants.items():
        sent, answer = stream_head(refusals.service.url, start, filler, budget=16 * MAX_HEAD_BYTES)
        assert sent < 4 * MAX_HEAD_BYTES, (what, sent)
        if answer:  # the answer may be lost to a reset, since the client was still sending
            assert answer.startswith(b"HTTP/1.1 431 "), (what, answer[:100])
            assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] == (
                "headers_too_large"
            )
    assert refusals.api.get("/v1/configs/prod").status_code == 200
    refusals.unchanged()


READ_TIMEOUT = 0.5


def read_all(sock: socket.socket, within: float) -> bytes:
    """What the server sends until it closes the connection (or `within` seconds pass)."""
    sock.settimeout(within)
    answer = b""
    with contextlib.suppress(OSError):
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_slow_requests_are_408_and_streams_outlive_the_read_timeout(
    service_factory: Callable[..., RunningService],
) -> None:
    """A request must arrive whole within the read timeout (slowloris); a watch stream,
    whose request is whole at once, stays open far longer."""
    svc = service_factory(request_read_timeout=READ_TIMEOUT)
    parts = urlsplit(svc.url)
    assert parts.hostname is not None and parts.port is not None
    address = (parts.hostname, parts.port)
    auth = f"Authorization: Bearer {svc.admin_token}\r\n".encode()
    slow = {
        "nothing sent": b"",
        "a head that stops": b"GET /v1/configs/prod HTTP/1.1\r\nHost: x\r\n",
        "a body that stops": b"PUT /v1/configs/prod/a HTTP/1.1\r\nHost: x\r\n" + auth
        + b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"kind\"",
    }  # fmt: skip
    for what, data in slow.items():
        with socket.create_connection(address, timeout=10) as sock:
            started = time.monotonic()
            sock.sendall(data)
            answer = read_all(sock, within=10)
            took = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 408 "), (what, answer[:80])
        assert b'"code": "request_timeout"' in answer, what
        assert READ_TIMEOUT * 0.9 < took < READ_TIMEOUT + 5, (what, took)

    with svc.client() as api:
        stream = SseReader(svc.url, svc.admin_token, ["prod"])
        assert stream.next() is not None  # the snapshot
        time.sleep(READ_TIMEOUT * 4)
        response = api.put("/v1/configs/prod/a", content=rate_body(3), headers=JSON)
        revision = response.json()["revision"]
        event = stream.next()
        assert event is not None and (event.event, event.id) == ("put", revision)
        stream.close()
        # a keep-alive connection idle between requests is uvicorn's to close, not a 408
        assert api.get("/v1/configs/prod").status_code == 200


def test_a_client_waiting_for_100_continue_is_not_timed_out(
    service_factory: Callable[..., RunningService], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With `Expect: 100-continue` the client sends its body once the service asks for it:
    an app slower than the read timeout to ask is not the client's delay."""
    from configsvc.api import configs

    original = configs.read_json_body

    async def slow_read(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(READ_TIMEOUT * 3)
        return await original(*args, **kwargs)

    monkeypatch.setattr(configs, "read_json_body", slow_read)
    svc = service_factory(request_read_timeout=READ_TIMEOUT)
    parts = urlsplit(svc.url)
    assert parts.hostname is not None and parts.port is not None
    body = rate_body(2)
    head = (
        f"PUT /v1/configs/prod/a HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {svc.admin_token}"
        f"\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Expect: 100-continue\r\n\r\n"
    ).encode()
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(head)
        interim = sock.recv(65536)
        assert interim.startswith(b"HTTP/1.1 100 "), interim[:80]
        sock.sendall(body)
        answer = read_response(sock)
    assert answer.status_code == 201, answer.content[:200]
