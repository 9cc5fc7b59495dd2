"""The SDK against a real etcd and the real service over the wire."""

from __future__ import annotations

import threading
import time
from typing import Any, Self

import httpx
import pytest
from configsvc_client import ConfigClient, ConfigUnavailable, Document, Mode
from configsvc_client.kinds import ModelEndpoints, RateLimits
from pydantic import model_validator
from support import RunningService

from tests.sdk.helpers import FAST, ChaosProxy, async_wait_until, delete, limits, put, wait_until


class Recorder:
    """Every (key, version) a client's on_change saw, in order (None: deleted)."""

    def __init__(self, client: ConfigClient) -> None:
        self.seen: list[tuple[str, int | None]] = []
        self._lock = threading.Lock()
        client.on_change(self)

    def __call__(self, old: Document | None, new: Document | None) -> None:
        with self._lock:
            if new is not None:
                self.seen.append((new.key, new.version))
            elif old is not None:
                self.seen.append((old.key, None))


def rps(binding: Any) -> float | None:
    value = binding.value
    return None if value is None else value.limits["chat"].requests_per_second


def test_snapshot_then_ordered_puts_and_deletes(
    sdk_service: RunningService, admin: httpx.Client
) -> None:
    put(admin, "prod/a", limits(1))
    put(admin, "prod/b", limits(2))
    put(admin, "other/x", limits(3))
    client = ConfigClient(
        sdk_service.url, sdk_service.admin_token, namespaces=["prod", "staging"], options=FAST
    )
    a = client.bind("prod/a", RateLimits)
    seen = Recorder(client)
    with client:
        assert rps(a) == 1
        assert client.status.mode == "streaming"
        assert client.status.error is None
        assert set(client.documents()) == {"prod/a", "prod/b"}
        put(admin, "prod/a", limits(10))
        put(admin, "prod/b", limits(20))
        delete(admin, "prod/a")
        put(admin, "other/x", limits(30))
        put(admin, "staging/s", limits(40))
        last = put(admin, "prod/a", limits(100))
        wait_until(lambda: client.status.revision == last["revision"], message="last revision")
        assert rps(a) == 100
        assert a.document is not None and a.document.version == last["version"]
        assert seen.seen == [
            ("prod/a", 1),
            ("prod/b", 1),
            ("prod/a", 2),
            ("prod/b", 2),
            ("prod/a", None),
            ("staging/s", 1),
            ("prod/a", last["version"]),
        ]
    assert client.status.mode == "stopped"
    assert rps(a) == 100  # values stay readable after stop


def test_resume_after_a_dropped_stream_delivers_each_change_exactly_once(
    sdk_service: RunningService, admin: httpx.Client, proxy: ChaosProxy
) -> None:
    put(admin, "prod/a", limits(1))
    client = ConfigClient(proxy.url, sdk_service.admin_token, namespaces=["prod"], options=FAST)
    seen = Recorder(client)
    with client:
        revision_before = client.status.revision
        proxy.refuse_other = proxy.refuse_watch = True
        proxy.cut()
        wait_until(lambda: client.status.mode == "cached", message="outage noticed")
        put(admin, "prod/a", limits(2))
        put(admin, "prod/b", limits(1))
        delete(admin, "prod/a")
        last = put(admin, "prod/b", limits(2))
        time.sleep(0.1)
        proxy.refuse_watch = False  # the stream may come back; polls still may not
        wait_until(lambda: client.status.revision == last["revision"], message="resume")
        assert client.status.mode == "streaming"
        assert proxy.resume_ids[0] is None
        assert proxy.resume_ids[-1] == str(revision_before)
        assert seen.seen == [
            ("prod/a", 1),
            ("prod/a", 2),
            ("prod/b", 1),
            ("prod/a", None),
            ("prod/b", 2),
        ]


def test_polls_while_the_stream_is_refused_then_streams_again(
    sdk_service: RunningService, admin: httpx.Client, proxy: ChaosProxy
) -> None:
    put(admin, "prod/a", limits(1))
    client = ConfigClient(proxy.url, sdk_service.admin_token, namespaces=["prod"], options=FAST)
    a = client.bind("prod/a", RateLimits)
    with client:
        assert client.status.mode == "streaming"
        proxy.refuse_watch = True
        proxy.cut()
        wait_until(lambda: client.status.mode == "polling", message="polling")
        # first the cut stream's error, then that of the refused reconnection
        wait_until(lambda: "503" in (client.status.error or ""), message="the refusal")
        put(admin, "prod/a", limits(2))
        wait_until(lambda: rps(a) == 2, message="a change picked up by a poll")
        assert client.status.mode == "polling"
        attempts = proxy.watch_requests
        wait_until(lambda: proxy.watch_requests > attempts + 1, message="stream retries")

        proxy.refuse_watch = False
        wait_until(lambda: client.status.mode == "streaming", message="streaming again")
        polls = proxy.other_requests
        put(admin, "prod/a", limits(3))
        wait_until(lambda: rps(a) == 3, message="a change over the stream")
        time.sleep(10 * FAST.poll_interval)
        assert proxy.other_requests == polls  # no polling while streaming
        assert client.status.error is None


def test_a_silent_stream_counts_as_dropped_and_is_resumed(
    sdk_service: RunningService, admin: httpx.Client, proxy: ChaosProxy
) -> None:
    put(admin, "prod/a", limits(1))
    client = ConfigClient(proxy.url, sdk_service.admin_token, namespaces=["prod"], options=FAST)
    a = client.bind("prod/a", RateLimits)
    with client:
        time.sleep(3 * FAST.silence_timeout)
        assert proxy.watch_requests == 1  # keep-alives keep a quiet stream alive
        revision = client.status.revision
        proxy.stall_streams()
        put(admin, "prod/a", limits(2))  # held back by the stalled stream
        wait_until(lambda: proxy.watch_requests == 2, message="reconnect after silence")
        wait_until(lambda: rps(a) == 2, message="the held-back change")
        assert proxy.resume_ids[-1] == str(revision)
        assert client.status.mode == "streaming"


class StrictLimits(RateLimits):
    """This service can take at most 100 requests per second on `chat`."""

    @model_validator(mode="after")
    def _at_most_100(self) -> Self:
        chat = self.limits.get("chat")
        if chat is None or (chat.requests_per_second or 0) > 100:
            raise ValueError("chat must allow at most 100 requests per second")
        return self


def test_a_document_the_bound_model_rejects_is_not_applied(
    sdk_service: RunningService, admin: httpx.Client
) -> None:
    put(admin, "prod/a", limits(5))
    client = ConfigClient(
        sdk_service.url, sdk_service.admin_token, namespaces=["prod"], options=FAST
    )
    a = client.bind("prod/a", StrictLimits)
    values: list[float | None] = []
    a.on_change(lambda _old, new: values.append(new and new.limits["chat"].requests_per_second))
    with client:
        bad = put(admin, "prod/a", limits(500))  # valid for the service, not for this service
        wait_until(lambda: client.status.revision == bad["revision"], message="rejected version")
        assert rps(a) == 5
        assert a.error is not None and "at most 100" in a.error
        assert client.status.error is not None
        assert "invalid_document" in client.status.error and "prod/a" in client.status.error
        assert client.get("prod/a").version == 1  # type: ignore[union-attr]
        put(admin, "prod/a", limits(7))
        wait_until(lambda: rps(a) == 7, message="next good version")
        assert a.error is None and client.status.error is None
    assert values == [5, 7]  # 500 was never applied


def test_a_bad_token_fails_start_at_once(sdk_service: RunningService) -> None:
    client = ConfigClient(sdk_service.url, "not-a-token", namespaces=["prod"], options=FAST)
    started = time.monotonic()
    with pytest.raises(ConfigUnavailable, match="unauthorized"):
        client.start()
    assert time.monotonic() - started < 2
    assert client.status.mode == "stopped"


def test_a_forbidden_namespace_fails_start(
    sdk_service: RunningService, admin: httpx.Client
) -> None:
    body = {"name": "dev-reader", "role": "reader", "namespaces": ["dev"]}
    token = admin.post("/v1/tokens", json=body).json()["token"]
    client = ConfigClient(sdk_service.url, token, namespaces=["prod"], options=FAST)
    with pytest.raises(ConfigUnavailable, match="forbidden"):
        client.start()


def test_a_revoked_token_keeps_the_last_value_and_stops_hammering(
    sdk_service: RunningService, admin: httpx.Client, proxy: ChaosProxy
) -> None:
    put(admin, "prod/a", limits(5))
    body = {"name": "svc", "role": "reader", "namespaces": ["prod"]}
    token = admin.post("/v1/tokens", json=body).json()["token"]
    client = ConfigClient(proxy.url, token, namespaces=["prod"], options=FAST)
    a = client.bind("prod/a", RateLimits)
    with client:
        assert admin.delete("/v1/tokens/svc").status_code in (200, 204)
        wait_until(lambda: client.status.error == "unauthorized", message="unauthorized")
        wait_until(lambda: client.status.mode == "cached", message="cached")
        assert rps(a) == 5
        before = proxy.watch_requests + proxy.other_requests
        time.sleep(1.0)
        requests = proxy.watch_requests + proxy.other_requests - before
        # stream and poll each retry every auth_retry_interval (0.5 s), not every 0.05 s
        assert requests <= 2 * (1.0 / FAST.auth_retry_interval + 1)


def test_fails_over_to_the_next_url(sdk_service: RunningService, admin: httpx.Client) -> None:
    put(admin, "prod/a", limits(5))
    dead = "http://127.0.0.1:9"  # discard port: nothing listens
    client = ConfigClient(
        [dead, sdk_service.url], sdk_service.admin_token, namespaces="prod", options=FAST
    )
    a = client.bind("prod/a", RateLimits)
    with client:
        assert rps(a) == 5
        wait_until(lambda: client.status.mode == "streaming", message="streaming")


async def test_async_face_runs_on_the_callers_loop(
    sdk_service: RunningService, admin: httpx.Client
) -> None:
    put(admin, "prod/a", limits(5))
    async with ConfigClient(
        sdk_service.url, sdk_service.admin_token, namespaces=["prod"], options=FAST
    ) as client:
        a = client.bind("prod/a", RateLimits)
        assert rps(a) == 5
        async with httpx.AsyncClient(
            base_url=sdk_service.url,
            headers={"Authorization": f"Bearer {sdk_service.admin_token}"},
        ) as http:
            response = await http.put(
                "/v1/configs/prod/a", json={"kind": "RateLimits", "spec": limits(6)}
            )
            assert response.status_code == 200
        await async_wait_until(lambda: rps(a) == 6)
        assert client.status.mode is Mode.STREAMING
    assert client.status.mode == "stopped"


def test_start_without_service_or_cache_raises_after_start_timeout() -> None:
    options = FAST.replace(start_timeout=0.3)
    client = ConfigClient("http://127.0.0.1:9", "t", namespaces=["prod"], options=options)
    started = time.monotonic()
    with pytest.raises(ConfigUnavailable, match="no cache"):
        client.start()
    assert 0.3 <= time.monotonic() - started < 2


def test_secret_values_are_masked_unless_the_token_may_read_them(
    sdk_service: RunningService, admin: httpx.Client
) -> None:
    endpoint = {"base_url": "https://api.example.com/v1", "model": "m", "api_key": "sk-live"}
    put(admin, "prod/models", {"default": "e", "endpoints": {"e": endpoint}}, "ModelEndpoints")
    body = {"name": "plain-reader", "role": "reader", "namespaces": ["prod"]}
    plain = admin.post("/v1/tokens", json=body).json()["token"]
    for token, expected in ((plain, "****"), (sdk_service.admin_token, "sk-live")):
        with ConfigClient(sdk_service.url, token, namespaces=["prod"], options=FAST) as client:
            models = client.bind("prod/models", ModelEndpoints)
            assert models.value is not None
            assert models.value.endpoints["e"].api_key == expected
