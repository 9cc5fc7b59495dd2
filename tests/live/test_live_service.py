"""The live helpers against real changes pushed by the real service through the SDK."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from configsvc_client import Binding, ConfigClient
from configsvc_client.kinds import AuthKeys, ModelEndpoints, RateLimits
from configsvc_client.live import (
    ATTEMPTS_EXTENSION,
    ENDPOINT_EXTENSION,
    LiveHTTPClient,
    LiveKeyring,
    LiveRateLimiter,
    NotConfigured,
    hash_key,
)
from support import RunningService

from tests.live.doubles import FakeClock
from tests.live.servers import FakeLLM, create_token, delete, put, until

FAST_RETRY = {"attempts": 3, "backoff_initial": 0.01, "backoff_max": 0.05, "jitter": True}
CHAT = {"messages": [{"role": "user", "content": "hi"}]}


async def push(api: httpx.Client, binding: Binding[Any], kind: str, spec: dict[str, Any]) -> int:
    """PUT the document and wait until the binding holds that version."""
    version = put(api, binding.key, kind, spec)
    await until(lambda: binding.document is not None and binding.document.version >= version)
    return version


def endpoint(fake: FakeLLM, **fields: Any) -> dict[str, Any]:
    return {"base_url": fake.base_url, "model": f"{fake.name}-model", "retry": FAST_RETRY, **fields}


async def test_raised_read_timeout_lets_the_same_client_succeed(
    api: httpx.Client, client: ConfigClient, fake_llm: Callable[..., FakeLLM]
) -> None:
    local = fake_llm("local", latency=0.4)
    models = client.bind("prod/chat-models", ModelEndpoints)
    spec = {
        "default": "local",
        "endpoints": {
            "local": endpoint(local, timeout={"read": 0.1}, retry={**FAST_RETRY, "attempts": 1})
        },
    }
    await push(api, models, "ModelEndpoints", spec)

    async with LiveHTTPClient(models) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.post("/chat/completions", json=CHAT)
        spec["endpoints"]["local"]["timeout"] = {"read": 5}
        await push(api, models, "ModelEndpoints", spec)
        response = await http.post("/chat/completions", json=CHAT)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "[local] hi"


async def test_base_url_and_key_changes_reach_the_next_request(
    api: httpx.Client, client: ConfigClient, fake_llm: Callable[..., FakeLLM]
) -> None:
    a = fake_llm("a", api_key="key-a")
    b = fake_llm("b", api_key="key-b")
    models = client.bind("prod/chat-models", ModelEndpoints)
    spec = {"default": "main", "endpoints": {"main": endpoint(a, api_key="key-a")}}
    await push(api, models, "ModelEndpoints", spec)

    async with LiveHTTPClient(models) as http:
        for _ in range(3):
            response = await http.post(
                "/chat/completions", json=lambda e: {**CHAT, "model": e.model}
            )
            assert response.status_code == 200
        # One connection, reused by every call.
        assert (a.stats()["completions"], a.stats()["connections"]) == (3, 1)
        assert a.stats()["last_api_key"] == "key-a"
        assert a.stats()["last_model"] == "a-model"

        spec["endpoints"]["main"] = endpoint(b, api_key="key-b")
        await push(api, models, "ModelEndpoints", spec)
        response = await http.post("/chat/completions", json=CHAT)
        assert response.status_code == 200
        assert response.json()["choices"][0]["message"]["content"] == "[b] hi"
        assert b.stats()["last_api_key"] == "key-b"

        # Only the key changes: same base URL, same connection pool.
        b.set(api_key="key-b2")
        spec["endpoints"]["main"]["api_key"] = "key-b2"
        await push(api, models, "ModelEndpoints", spec)
        assert (await http.post("/chat/completions", json=CHAT)).status_code == 200
        assert b.stats()["last_api_key"] == "key-b2"
        assert (b.stats()["completions"], b.stats()["connections"]) == (2, 1)
    assert a.stats()["completions"] == 3


async def test_retries_then_fallbacks_counted_on_the_upstreams(
    api: httpx.Client, client: ConfigClient, fake_llm: Callable[..., FakeLLM]
) -> None:
    local = fake_llm("local", fail_next=2)
    hosted = fake_llm("hosted")
    models = client.bind("prod/chat-models", ModelEndpoints)
    spec = {
        "default": "local",
        "fallbacks": ["hosted"],
        "endpoints": {"local": endpoint(local), "hosted": endpoint(hosted)},
    }
    await push(api, models, "ModelEndpoints", spec)

    async with LiveHTTPClient(models) as http:
        response = await http.post("/chat/completions", json=CHAT)
        assert response.extensions[ENDPOINT_EXTENSION] == "local"
        assert response.extensions[ATTEMPTS_EXTENSION] == 3
        assert (local.stats()["requests"], local.stats()["failures_served"]) == (3, 2)

        local.set(fail_next=10, fail_status=429)
        response = await http.post("/chat/completions", json=CHAT)
        assert response.extensions[ENDPOINT_EXTENSION] == "hosted"
        assert response.extensions[ATTEMPTS_EXTENSION] == 4
        assert local.stats()["requests"] == 6
        assert hosted.stats()["requests"] == 1

        # Fewer attempts, pushed live: the next call tries local once.
        spec["endpoints"]["local"]["retry"] = {**FAST_RETRY, "attempts": 1}
        await push(api, models, "ModelEndpoints", spec)
        response = await http.post("/chat/completions", json=CHAT)
        assert response.extensions[ATTEMPTS_EXTENSION] == 2
        assert local.stats()["requests"] == 7

        # Every try fails: the last answer is returned.
        hosted.set(fail_next=10, fail_status=502)
        response = await http.post("/chat/completions", json=CHAT)
        assert response.status_code == 502
        assert response.extensions[ATTEMPTS_EXTENSION] == 4


async def test_a_token_without_secrets_sends_no_masked_key(
    api: httpx.Client, service: RunningService, fake_llm: Callable[..., FakeLLM]
) -> None:
    hosted = fake_llm("hosted")
    token = create_token(api, "no-secrets", role="reader", namespaces=["prod"])
    put(
        api,
        "prod/chat-models",
        "ModelEndpoints",
        {"default": "h", "endpoints": {"h": endpoint(hosted, api_key="sk-real")}},
    )
    async with ConfigClient(service.url, token, namespaces=["prod"]) as reader:
        models = reader.bind("prod/chat-models", ModelEndpoints)
        await until(lambda: models.value is not None)
        assert models.value is not None and models.value.endpoints["h"].api_key == "****"
        async with LiveHTTPClient(models) as http:
            assert (await http.post("/chat/completions", json=CHAT)).status_code == 200
    assert hosted.stats()["last_api_key"] is None


async def test_no_document_then_deleted(api: httpx.Client, client: ConfigClient) -> None:
    models = client.bind("prod/chat-models", ModelEndpoints)
    async with LiveHTTPClient(models) as http:
        with pytest.raises(NotConfigured):
            await http.get("/models")
        spec = {
            "default": "x",
            "endpoints": {"x": {"base_url": "http://127.0.0.1:9", "model": "m"}},
        }
        await push(api, models, "ModelEndpoints", spec)
        assert [t.name for t in http.targets()] == ["x"]
        delete(api, "prod/chat-models")
        await until(lambda: models.value is None)
        with pytest.raises(NotConfigured):
            await http.get("/models")


async def test_rate_limiter_before_and_after_a_change(
    api: httpx.Client, client: ConfigClient
) -> None:
    clock = FakeClock()
    limits = client.bind("prod/limits", RateLimits)
    limiter = LiveRateLimiter(limits, "chat", clock=clock, sleep=clock.sleep)
    assert limiter.try_acquire("k")  # no document yet: no limit
    await push(
        api, limits, "RateLimits", {"limits": {"chat": {"requests_per_second": 1, "burst": 3}}}
    )
    assert [limiter.try_acquire("k") for _ in range(4)] == [True, True, True, False]

    # A bigger burst gives no free burst; the new rate refills faster.
    await push(
        api, limits, "RateLimits", {"limits": {"chat": {"requests_per_second": 10, "burst": 50}}}
    )
    assert not limiter.try_acquire("k")
    clock.advance(0.5)
    assert sum(limiter.try_acquire("k") for _ in range(10)) == 5

    # A smaller burst clamps a full bucket, but never locks a key out.
    clock.advance(100)
    await push(
        api,
        limits,
        "RateLimits",
        {"limits": {"chat": {"requests_per_minute": 60, "burst": 2, "tokens_per_minute": 1000}}},
    )
    assert limiter.try_acquire("k", tokens=600)
    assert not limiter.try_acquire("k", tokens=600)  # the token budget, not the burst
    assert limiter.try_acquire("k", tokens=400)
    assert not limiter.try_acquire("k", tokens=0)  # the burst of 2 is used up
    await limiter.acquire("k", tokens=0)
    assert clock.sleeps and sum(clock.sleeps) == pytest.approx(1.0)


async def test_keyring_rotation(api: httpx.Client, client: ConfigClient) -> None:
    keys = client.bind("prod/keys", AuthKeys)
    keyring = LiveKeyring(keys)
    old = {"id": "team-a-1", "sha256": hash_key("old-key"), "scopes": ["chat"]}
    new = {"id": "team-a-2", "sha256": hash_key("new-key"), "scopes": ["chat"]}
    assert keyring.verify("old-key") is None

    await push(api, keys, "AuthKeys", {"keys": [{**old, "state": "active"}]})
    info = keyring.verify("old-key", "chat")
    assert info is not None and not info.retiring
    assert keyring.verify("new-key") is None

    await push(api, keys, "AuthKeys", {"keys": [{**old, "state": "retiring"}, new]})
    info = keyring.verify("old-key", "chat")
    assert info is not None and info.retiring
    assert keyring.verify("new-key", "chat") is not None

    await push(api, keys, "AuthKeys", {"keys": [{**old, "state": "revoked"}, new]})
    assert keyring.verify("old-key", "chat") is None
    assert keyring.verify("new-key", "chat") is not None
    assert keyring.verify("new-key", "admin") is None
