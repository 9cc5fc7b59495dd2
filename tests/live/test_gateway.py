"""The example gateway end to end: real service, SDK, fake upstreams, uvicorn on free ports."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from configsvc_client import ConfigClient
from configsvc_client.live import hash_key
from support import RunningService

from tests.live.servers import FakeLLM, ServerThread

RETRY = {"attempts": 2, "backoff_initial": 0.01, "backoff_max": 0.05}
KEY_A, KEY_B, KEY_EMBED = "sk-team-a", "sk-team-b", "sk-embed-only"


class Gateway:
    """The example gateway in front of two fakes, configured through the real service."""

    def __init__(
        self, api: httpx.Client, service: RunningService, local: FakeLLM, hosted: FakeLLM
    ) -> None:
        from llm_gateway import create_app

        self.api = api
        self.models: dict[str, Any] = {
            "default": "local",
            "fallbacks": ["hosted"],
            "endpoints": {
                "local": {
                    "base_url": local.base_url,
                    "model": "local-34b",
                    "retry": RETRY,
                    "timeout": {"read": 5},
                },
                "hosted": {
                    "base_url": hosted.base_url,
                    "model": "gpt-x",
                    "api_key": "sk-up",
                    "retry": RETRY,
                },
            },
        }
        self.limits: dict[str, Any] = {
            "limits": {"chat": {"requests_per_second": 100, "burst": 100}}
        }
        self.keys: dict[str, Any] = {
            "keys": [
                {"id": "team-a", "sha256": hash_key(KEY_A), "scopes": ["chat"]},
                {"id": "team-b", "sha256": hash_key(KEY_B), "scopes": ["chat"]},
                {"id": "embed", "sha256": hash_key(KEY_EMBED), "scopes": ["embed"]},
            ]
        }
        self.push("chat-models", "ModelEndpoints", self.models, wait=False)
        self.push("limits", "RateLimits", self.limits, wait=False)
        self.push("keys", "AuthKeys", self.keys, wait=False)
        client = ConfigClient(service.url, service.admin_token, namespaces=["prod"])
        self.server = ServerThread(create_app(client)).start()
        self.http = httpx.Client(base_url=self.server.url, timeout=10)

    def push(self, name: str, kind: str, spec: dict[str, Any], *, wait: bool = True) -> None:
        """PUT a document; wait until the gateway has applied it."""
        response = self.api.put(f"/v1/configs/prod/{name}", json={"kind": kind, "spec": spec})
        assert response.status_code in (200, 201), response.text
        revision = response.json()["revision"]
        deadline = time.monotonic() + 5
        while wait and (self.http.get("/healthz").json()["revision"] or 0) < revision:
            assert time.monotonic() < deadline, "the gateway did not apply the change"
            time.sleep(0.01)

    def chat(self, key: str | None = KEY_A, **body: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        payload = {"model": "ignored", "messages": [{"role": "user", "content": "hi"}], **body}
        return self.http.post("/v1/chat/completions", json=payload, headers=headers)

    def stream(self, key: str = KEY_A) -> tuple[httpx.Response, list[dict[str, Any]]]:
        payload = {"stream": True, "messages": [{"role": "user", "content": "hi"}]}
        events = []
        with self.http.stream(
            "POST", "/v1/chat/completions", json=payload, headers={"Authorization": f"Bearer {key}"}
        ) as response:
            for line in response.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    events.append(json.loads(line.removeprefix("data: ")))
        return response, events

    def close(self) -> None:
        self.http.close()
        self.server.stop()


@pytest.fixture
def gateway(
    api: httpx.Client, service: RunningService, fake_llm: Callable[..., FakeLLM]
) -> Iterator[tuple[Gateway, FakeLLM, FakeLLM]]:
    local, hosted = fake_llm("local"), fake_llm("hosted", api_key="sk-up")
    running = Gateway(api, service, local, hosted)
    yield running, local, hosted
    running.close()


def text_of(events: list[dict[str, Any]]) -> str:
    return "".join(e["choices"][0]["delta"].get("content") or "" for e in events)


def test_keys_and_rate_limits(gateway: tuple[Gateway, FakeLLM, FakeLLM]) -> None:
    gw, _, _ = gateway
    response = gw.chat(key=None)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["error"]["type"] == "authentication_error"
    assert gw.chat("sk-wrong").status_code == 401
    assert gw.chat(KEY_EMBED).status_code == 403
    response = gw.chat()
    assert response.status_code == 200
    assert response.headers["x-gateway-key"] == "team-a"
    assert "warning" not in response.headers

    gw.limits["limits"]["chat"] = {"requests_per_minute": 60, "burst": 2}
    gw.push("limits", "RateLimits", gw.limits)
    statuses = [gw.chat().status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    limited = gw.chat()
    assert limited.json()["error"]["type"] == "rate_limit_exceeded"
    assert int(limited.headers["retry-after"]) >= 1
    assert gw.chat(KEY_B).status_code == 200  # its own bucket

    # Rotation: the old key passes with a warning, then fails; the new one passes.
    gw.limits["limits"]["chat"] = {"requests_per_second": 100, "burst": 100}
    gw.push("limits", "RateLimits", gw.limits)
    gw.keys["keys"][0]["state"] = "retiring"
    gw.keys["keys"].append(
        {"id": "team-a-2", "sha256": hash_key("sk-team-a-2"), "scopes": ["chat"]}
    )
    gw.push("keys", "AuthKeys", gw.keys)
    response = gw.chat()
    assert response.status_code == 200
    assert "retiring" in response.headers["warning"]
    assert gw.chat("sk-team-a-2").headers["x-gateway-key"] == "team-a-2"
    gw.keys["keys"][0]["state"] = "revoked"
    gw.push("keys", "AuthKeys", gw.keys)
    assert gw.chat().status_code == 401
    assert gw.chat("sk-team-a-2").status_code == 200


def test_forwarding_timeouts_and_fallbacks(gateway: tuple[Gateway, FakeLLM, FakeLLM]) -> None:
    gw, local, hosted = gateway
    response = gw.chat()
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "[local] hi"
    assert response.json()["model"] == "local-34b"
    assert (response.headers["x-gateway-endpoint"], response.headers["x-gateway-attempts"]) == (
        "local",
        "1",
    )

    # The local model gets slow: a short read timeout sends requests to the fallback.
    local.set(latency=0.3)
    gw.models["endpoints"]["local"]["timeout"] = {"read": 0.1}
    gw.push("chat-models", "ModelEndpoints", gw.models)
    response = gw.chat()
    assert response.headers["x-gateway-endpoint"] == "hosted"
    assert response.headers["x-gateway-attempts"] == "3"
    assert response.json()["model"] == "gpt-x"
    assert hosted.stats()["last_api_key"] == "sk-up"

    # Raising the timeout brings it back, with no restart.
    gw.models["endpoints"]["local"]["timeout"] = {"read": 5}
    gw.push("chat-models", "ModelEndpoints", gw.models)
    assert gw.chat().headers["x-gateway-endpoint"] == "local"

    # Every endpoint failing: the last answer is passed on; timeouts everywhere: 504.
    local.set(latency=0, fail_next=2)
    hosted.set(fail_next=2, fail_status=500)
    response = gw.chat()
    assert response.status_code == 500
    assert response.headers["x-gateway-attempts"] == "4"
    local.set(latency=0.3)
    hosted.set(latency=0.3)
    for name in ("local", "hosted"):
        gw.models["endpoints"][name]["timeout"] = {"read": 0.05}
    gw.push("chat-models", "ModelEndpoints", gw.models)
    response = gw.chat()
    assert response.status_code == 504
    assert "ReadTimeout" in response.json()["error"]["message"]


def test_streaming_and_broken_streams(gateway: tuple[Gateway, FakeLLM, FakeLLM]) -> None:
    gw, local, _ = gateway
    response, events = gw.stream()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-gateway-endpoint"] == "local"
    assert text_of(events) == "[local] hi"

    # Broken mid-way: the caller gets what arrived, then an error saying how much.
    local.set(break_after=2)
    _, events = gw.stream()
    assert text_of(events[:-1]) == "[local]"
    error = events[-1]["error"]
    assert error["type"] == "stream_interrupted"
    assert "'local'" in error["message"] and "broke off after" in error["message"]
    assert "incomplete chunked read" in error["message"]

    # Broken before the first byte: the router tries again (2 attempts), then the
    # fallback; the caller sees one whole stream.
    local.set(break_after=0)
    response, events = gw.stream()
    assert response.headers["x-gateway-endpoint"] == "hosted"
    assert response.headers["x-gateway-attempts"] == "3"
    assert text_of(events) == "[hosted] hi"
    assert local.stats()["streams_broken"] == 3
    status = gw.http.get("/status").json()["endpoints"]["local"]
    assert status["failures"] == {"interrupted": 3}
    assert (status["tries"], status["successes"], status["timeout"]["read"]) == (4, 1, 5)

    # A late first token (a slow prompt) falls over the same way, within first_token.
    local.set(break_after="", latency=1)
    gw.models["endpoints"]["local"]["timeout"] = {"read": 5, "first_token": 0.2}
    gw.push("chat-models", "ModelEndpoints", gw.models)
    response, events = gw.stream()
    assert (response.headers["x-gateway-endpoint"], text_of(events)) == ("hosted", "[hosted] hi")
    metrics = gw.http.get("/metrics").text
    assert 'configsvc_live_failures_total{cause="first_token",endpoint="local"' in metrics

    # An upstream error status is passed on as it is.
    local.set(latency=0, fail_next=10, fail_status=400)
    response, _ = gw.stream()
    assert response.status_code == 400
