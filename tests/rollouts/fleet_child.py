"""Many ConfigClients in one process, for the rollout tests.

argv[1] is JSON: urls, token, namespace, key (the document each client binds), clients (a
list of {"instance", "labels", "strict"}), polling (true: the watch stream is refused, so
the clients poll), interval (report_interval). A `strict` client binds the document with a
model that refuses more than 100 requests per second. Prints `ready` once every client has
started, then answers each stdin line: `versions` prints, as JSON, each client's applied
version of the document with its revision, rollout id and mode; `stop` stops every client
(each says goodbye) and exits.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any, Self

import httpx
from configsvc_client import ClientOptions, ConfigClient
from configsvc_client.kinds import RateLimits
from pydantic import model_validator

WATCH_PATH = "/v1/watch"


class StrictLimits(RateLimits):
    @model_validator(mode="after")
    def _at_most_100(self) -> Self:
        chat = self.limits.get("chat")
        if chat is not None and (chat.requests_per_second or 0) > 100:
            raise ValueError("chat must allow at most 100 requests per second")
        return self


class NoStreams(httpx.AsyncBaseTransport):
    """Refuses watch requests (503), passes every other request on: the SDK polls."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == WATCH_PATH:
            return httpx.Response(503, json={"error": {"code": "test", "message": "polling"}})
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


async def main() -> None:
    config = json.loads(sys.argv[1])
    options = ClientOptions(
        start_timeout=20,
        poll_interval=0.3,
        backoff_initial=0.05,
        backoff_max=0.5,
        server_keepalive=1.0,
    )
    clients: list[ConfigClient] = []
    for spec in config["clients"]:
        client = ConfigClient(
            config["urls"],
            config["token"],
            namespaces=[config["namespace"]],
            app="rollout-test",
            labels=spec.get("labels") or {},
            instance_id=spec["instance"],
            report_interval=config.get("interval", 1.0),
            options=options,
            transport=NoStreams() if config.get("polling") else None,
        )
        if spec.get("strict"):
            client.bind(config["key"], StrictLimits)
        clients.append(client)
    await asyncio.gather(*(client.astart() for client in clients))
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        command = line.strip()
        if command == "versions":
            print(json.dumps({c.instance_id: _held(c, config["key"]) for c in clients}), flush=True)
        elif command in ("stop", ""):
            await asyncio.gather(*(client.aclose() for client in clients))
            print("{}", flush=True)
            return


def _held(client: ConfigClient, key: str) -> dict[str, Any]:
    document = client.get(key)
    status = client.status
    return {
        "version": document.version if document else None,
        "revision": document.revision if document else None,
        "rollout": document.rollout if document else None,
        "mode": str(status.mode),
        "error": status.error,
    }


if __name__ == "__main__":
    asyncio.run(main())
