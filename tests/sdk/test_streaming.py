"""The streaming source on a scripted transport: what it sends, and what it makes of bad input."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from configsvc_client import ConfigClient, ConfigUnavailable
from configsvc_client.kinds import RateLimits

from tests.sdk.helpers import FAST, async_wait_until


def doc(revision: int, version: int, rps: float) -> dict[str, object]:
    return {
        "namespace": "prod",
        "name": "a",
        "kind": "RateLimits",
        "spec": {"limits": {"chat": {"requests_per_second": rps}}, "added_later": True},
        "version": version,
        "revision": revision,
        "updated_at": "2026-01-01T00:00:00Z",
        "updated_by": "admin",
    }


class Script:
    """Answers watch requests from a list of event-stream bodies; records the requests."""

    def __init__(self, *bodies: bytes) -> None:
        self.bodies = list(bodies)
        self.requests: list[httpx.Request] = []
        self.hold = asyncio.Event()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path != "/v1/watch":
            return httpx.Response(503)
        if not self.bodies:
            return httpx.Response(503)
        body = self.bodies.pop(0)

        async def stream() -> AsyncIterator[bytes]:
            for i in range(0, len(body), 7):  # arbitrary chunking
                yield body[i : i + 7]
            if not self.bodies:
                await self.hold.wait()  # the last stream stays open

        headers = {"content-type": "text/event-stream; charset=utf-8"}
        return httpx.Response(200, headers=headers, content=stream())


def event(revision: int, kind: str, data: object) -> bytes:
    return f"id: {revision}\nevent: {kind}\ndata: {json.dumps(data)}\n\n".encode()


async def test_requests_resume_and_bad_events_force_a_reconnect() -> None:
    script = Script(
        event(
            5, "snapshot", {"revision": 5, "namespaces": ["prod", "dev"], "items": [doc(4, 1, 1)]}
        )
        + b"id: 6\nevent: put\ndata: {not json\n\n",
        event(6, "put", doc(6, 2, 2)) + b": keep-alive\n\n" + event(7, "future-kind", {}),
    )
    client = ConfigClient(
        ["http://one.test", "http://two.test"],
        "tok",
        namespaces=["prod", "dev"],
        options=FAST,
        transport=httpx.MockTransport(script),
    )
    async with client:
        a = client.bind("prod/a", RateLimits)
        await async_wait_until(lambda: a.document is not None and a.document.version == 2)
        assert client.status.mode == "streaming"
        assert client.status.revision == 6
    first, second = (r for r in script.requests if r.url.path == "/v1/watch")
    assert first.url.host == "one.test" and second.url.host == "two.test"  # failover
    assert first.url.params.get_list("namespace") == ["prod", "dev"]
    assert first.headers["authorization"] == "Bearer tok"
    assert first.headers["accept"] == "text/event-stream"
    assert "last-event-id" not in first.headers
    assert second.headers["last-event-id"] == "5"  # the bad event was not applied


async def test_an_answer_that_is_not_an_event_stream_is_refused() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"hello": "proxy"})

    client = ConfigClient(
        "http://x.test",
        "tok",
        namespaces=["prod"],
        options=FAST.replace(start_timeout=0.3),
        transport=httpx.MockTransport(handler),
    )
    with pytest.raises(ConfigUnavailable, match=r"protocol_error: http://x\.test: not an event"):
        await client.astart()
