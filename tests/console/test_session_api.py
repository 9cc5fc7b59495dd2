"""`/v1/session` and the cookie on the wire: real etcd, real uvicorn, two instances where
it matters (a session, its sign-out and its token's revocation hold on every instance)."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from http.cookies import SimpleCookie
from typing import Any

import httpx
import jsonschema_rs
import pytest
from support import ADMIN_TOKEN, RunningService

from configsvc.embedded.process import EtcdProcess
from tests.api.helpers import rate_spec

COOKIE = "configsvc_session"
SESSION = "/v1/session"


def sign_in(url: str, token: str) -> tuple[str, str, httpx.Response]:
    """(cookie value, csrf token, the answer) of a sign-in with `token`."""
    answer = httpx.post(f"{url}{SESSION}", json={"token": token}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.cookies[COOKIE], answer.json()["csrf_token"], answer


def cookie_client(url: str, cookie: str, csrf: str | None = None) -> httpx.Client:
    headers = {"X-CSRF-Token": csrf} if csrf else {}
    return httpx.Client(base_url=url, cookies={COOKIE: cookie}, headers=headers, timeout=10)


def make_token(api: httpx.Client, name: str, role: str, namespaces: list[str] | None = None) -> str:
    answer = api.post(
        "/v1/tokens", json={"name": name, "role": role, "namespaces": namespaces or ["*"]}
    )
    assert answer.status_code == 201, answer.text
    token: str = answer.json()["token"]
    return token


def session_keys(etcd: EtcdProcess) -> list[str]:
    """The session records in etcd (through its JSON gateway)."""
    prefix = b"/configsvc/sess/"
    end = prefix[:-1] + bytes([prefix[-1] + 1])
    body = {
        "key": base64.b64encode(prefix).decode(),
        "range_end": base64.b64encode(end).decode(),
        "keys_only": True,
    }
    answer = httpx.post(f"{etcd.client_url}/v3/kv/range", json=body, timeout=5)
    assert answer.status_code == 200, answer.text
    return [base64.b64decode(kv["key"]).decode() for kv in answer.json().get("kvs", [])]


def test_sign_in_sets_a_strict_http_only_cookie_and_answers_the_csrf_token(
    service: RunningService, api: httpx.Client
) -> None:
    token = make_token(api, "oncall", "writer", ["prod"])
    cookie, csrf, answer = sign_in(service.url, token)
    header = answer.headers["set-cookie"]
    parsed = SimpleCookie()
    parsed.load(header)
    morsel = parsed[COOKIE]
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "strict"
    assert morsel["path"] == "/v1"
    assert int(morsel["max-age"]) == 8 * 3600
    assert not morsel["secure"], "plain HTTP: Secure would make the browser drop it"
    body = answer.json()
    assert body["name"] == "oncall" and body["role"] == "writer" and body["namespaces"] == ["prod"]
    assert body["secrets"] is False and body["expires_at"].endswith("Z")
    assert len(csrf) >= 40 and csrf != cookie
    assert token not in answer.text and token not in header and token.split(".")[-1] not in cookie
    assert answer.headers["cache-control"] == "no-store"
    with cookie_client(service.url, cookie) as browser:
        again = browser.get(SESSION)
        assert again.status_code == 200 and again.json()["csrf_token"] == csrf
        assert browser.get("/v1/configs/prod").status_code == 200
        assert browser.get("/v1/configs/staging").status_code == 403


@pytest.mark.parametrize(
    "body",
    [
        {"token": "cst.nobody.abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"},
        {"token": "wrong"},
        {"token": ""},
        {},
        {"token": 5},
        {"token": "cst.x.never-echoed-value", "extra": 1},
    ],
)
def test_a_bad_sign_in_is_refused_and_stores_nothing(
    service: RunningService, etcd: EtcdProcess, body: dict[str, Any]
) -> None:
    answer = httpx.post(f"{service.url}{SESSION}", json=body, timeout=10)
    assert answer.status_code in (401, 422), answer.text
    assert "set-cookie" not in answer.headers
    assert answer.json()["error"]["code"] in ("unauthorized", "validation_failed")
    if isinstance(body.get("token"), str) and len(body["token"]) > 8:
        assert body["token"] not in answer.text, "the token was echoed"
    assert session_keys(etcd) == []


def test_a_form_post_cannot_sign_in(service: RunningService) -> None:
    """A cross-site form can only send form or text bodies: refused, nothing set."""
    answer = httpx.post(
        f"{service.url}{SESSION}",
        content=f"token={ADMIN_TOKEN}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    assert answer.status_code == 400
    assert "set-cookie" not in answer.headers


def test_a_write_with_the_cookie_needs_the_csrf_token(
    service: RunningService, api: httpx.Client
) -> None:
    cookie, csrf, _ = sign_in(service.url, make_token(api, "editor", "writer"))
    doc = {"kind": "RateLimits", "spec": rate_spec()}
    with cookie_client(service.url, cookie) as alone:
        refused = alone.put("/v1/configs/prod/limits", json=doc)
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "csrf_failed"
        forged = alone.put(
            "/v1/configs/prod/limits", json=doc, headers={"X-CSRF-Token": csrf[:-2] + "xx"}
        )
        assert forged.status_code == 403
        assert (
            alone.post("/v1/configs/prod/limits/rollback", json={"to_version": 1}).status_code
            == 403
        )
        assert alone.delete("/v1/session").status_code == 403, "signing out is a write too"
    assert api.get("/v1/configs/prod/limits").status_code == 404, "a refused write wrote nothing"
    with cookie_client(service.url, cookie, csrf) as page:
        created = page.put("/v1/configs/prod/limits", json=doc)
        assert created.status_code == 201, created.text
        assert created.json()["updated_by"] == "editor"


def test_the_bearer_token_decides_when_both_come(
    service: RunningService, api: httpx.Client
) -> None:
    reader = make_token(api, "just-reading", "reader")
    cookie, csrf, _ = sign_in(service.url, ADMIN_TOKEN)
    doc = {"kind": "RateLimits", "spec": rate_spec()}
    with cookie_client(service.url, cookie, csrf) as page:
        as_reader = page.put(
            "/v1/configs/prod/x", json=doc, headers={"Authorization": f"Bearer {reader}"}
        )
        assert as_reader.status_code == 403 and as_reader.json()["error"]["code"] == "forbidden"
        bad_bearer = page.get("/v1/namespaces", headers={"Authorization": "Bearer nope"})
        assert bad_bearer.status_code == 401
    with httpx.Client(base_url=service.url, cookies={COOKIE: cookie}, timeout=10) as no_csrf:
        # with a bearer, no CSRF proof is needed (another site cannot send a header)
        made = no_csrf.put(
            "/v1/configs/prod/y", json=doc, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        assert made.status_code == 201


def test_no_cookie_or_a_bad_one_is_401(service: RunningService) -> None:
    assert httpx.get(f"{service.url}{SESSION}", timeout=10).status_code == 401
    for value in ("x", "A" * 43, "../../etc", "%00" * 15, "a" * 4000):
        with httpx.Client(base_url=service.url, timeout=10) as client:
            answer = client.get("/v1/namespaces", headers={"Cookie": f"{COOKIE}={value}"})
            assert answer.status_code == 401, value
            assert answer.json()["error"]["code"] == "unauthorized"


def test_sessions_hold_on_every_instance_and_end_everywhere(
    service_factory: Callable[..., RunningService], etcd: EtcdProcess
) -> None:
    first, second = service_factory(), service_factory()
    with first.client() as api:
        token = make_token(api, "shared", "writer")
    cookie, csrf, _ = sign_in(first.url, token)
    with cookie_client(second.url, cookie, csrf) as elsewhere:
        assert elsewhere.get("/v1/namespaces").status_code == 200
        assert (
            elsewhere.put(
                "/v1/configs/prod/z", json={"kind": "RateLimits", "spec": rate_spec()}
            ).status_code
            == 201
        )
    assert len(session_keys(etcd)) == 1
    with cookie_client(first.url, cookie, csrf) as page:
        out = page.delete(SESSION)
        assert out.status_code == 200 and out.json() == {"signed_out": True}
        cleared = SimpleCookie()
        cleared.load(out.headers["set-cookie"])
        assert cleared[COOKIE].value == "" and cleared[COOKIE]["max-age"] == "0"
    with cookie_client(second.url, cookie, csrf) as elsewhere:
        assert elsewhere.get("/v1/namespaces").status_code == 401
    assert session_keys(etcd) == []


def test_a_revoked_tokens_sessions_and_streams_end_at_once_everywhere(
    service_factory: Callable[..., RunningService],
) -> None:
    first, second = service_factory(keepalive=0.5), service_factory(keepalive=0.5)
    with first.client() as api:
        token = make_token(api, "leaving", "reader")
        cookie, _csrf, _ = sign_in(second.url, token)
        stream = CookieStream(second.url, cookie, ["prod"])
        try:
            assert stream.status_code == 200
            assert stream.next_event() == "snapshot"
            assert api.delete("/v1/tokens/leaving").status_code == 200
            with cookie_client(second.url, cookie) as page:
                assert page.get("/v1/namespaces").status_code == 401
            assert stream.ended_within(10), "the revoked token's console stream stayed open"
        finally:
            stream.close()


def test_signing_out_ends_the_sessions_streams_on_another_instance(
    service_factory: Callable[..., RunningService],
) -> None:
    first, second = service_factory(keepalive=0.5), service_factory(keepalive=0.5)
    cookie, csrf, _ = sign_in(first.url, ADMIN_TOKEN)
    stream = CookieStream(second.url, cookie, ["prod"])
    try:
        assert stream.next_event() == "snapshot"
        with cookie_client(first.url, cookie, csrf) as page:
            assert page.delete(SESSION).status_code == 200
        assert stream.ended_within(10)
    finally:
        stream.close()


def test_an_expired_session_is_refused(service_factory: Callable[..., RunningService]) -> None:
    running = service_factory(session_ttl=1.0, keepalive=0.5)
    cookie, _csrf, answer = sign_in(running.url, ADMIN_TOKEN)
    parsed = SimpleCookie()
    parsed.load(answer.headers["set-cookie"])
    assert parsed[COOKIE]["max-age"] == "1"
    stream = CookieStream(running.url, cookie, ["prod"])
    try:
        assert stream.next_event() == "snapshot"
        assert stream.ended_within(10), "the stream outlived its session"
    finally:
        stream.close()
    with cookie_client(running.url, cookie) as page:
        deadline = time.monotonic() + 10
        while page.get("/v1/namespaces").status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert page.get("/v1/namespaces").status_code == 401


def test_the_cookie_is_secure_under_tls(service: RunningService) -> None:
    """Behind a TLS-terminating proxy that the server trusts (uvicorn: loopback by default),
    and likewise under uvicorn's own TLS, the request's scheme is https."""
    tls = {"X-Forwarded-Proto": "https"}
    answer = httpx.post(
        f"{service.url}{SESSION}", json={"token": ADMIN_TOKEN}, headers=tls, timeout=10
    )
    assert answer.status_code == 200
    parsed = SimpleCookie()
    parsed.load(answer.headers["set-cookie"])
    assert parsed[COOKIE]["secure"] is True
    headers = {
        **tls,
        "X-CSRF-Token": answer.json()["csrf_token"],
        "Cookie": f"{COOKIE}={parsed[COOKIE].value}",
    }
    out = httpx.delete(f"{service.url}{SESSION}", headers=headers, timeout=10)
    assert out.status_code == 200 and "secure" in out.headers["set-cookie"].lower()


def test_session_answers_match_the_openapi_description(service: RunningService) -> None:
    openapi = httpx.get(f"{service.url}/openapi.json", timeout=10).json()
    cookie, csrf, signed_in = sign_in(service.url, ADMIN_TOKEN)
    with cookie_client(service.url, cookie, csrf) as page:
        answers = [
            ("post", signed_in),
            ("get", page.get(SESSION)),
            ("delete", page.delete(SESSION)),
        ]
    answers.append(("get", httpx.get(f"{service.url}{SESSION}", timeout=10)))
    for method, answer in answers:
        declared = openapi["paths"][SESSION][method]["responses"][str(answer.status_code)]
        schema = {
            **declared["content"]["application/json"]["schema"],
            "components": openapi["components"],
        }
        errors = [e.message for e in jsonschema_rs.validator_for(schema).iter_errors(answer.json())]
        assert not errors, (method, answer.status_code, errors)
    assert openapi["paths"][SESSION]["post"]["security"] == []


class CookieStream:
    """A watch stream opened, as a browser's EventSource does, with the cookie alone."""

    def __init__(self, url: str, cookie: str, namespaces: list[str]) -> None:
        params = [("namespace", ns) for ns in namespaces]
        self._client = httpx.Client(timeout=httpx.Timeout(10, read=None), cookies={COOKIE: cookie})
        request = self._client.build_request(
            "GET", f"{url}/v1/watch", params=params, headers={"Accept": "text/event-stream"}
        )
        self.response = self._client.send(request, stream=True)
        self.status_code = self.response.status_code
        self._lines = self.response.iter_lines()

    def next_event(self) -> str | None:
        for line in self._lines:
            if line.startswith("event:"):
                return line.partition(":")[2].strip()
        return None

    def ended_within(self, seconds: float) -> bool:
        """True when the service ends the stream within `seconds` (keep-alives aside)."""
        deadline = time.monotonic() + seconds
        for _line in self._lines:
            if time.monotonic() > deadline:
                return False
        return time.monotonic() <= deadline

    def close(self) -> None:
        self.response.close()
        self._client.close()
