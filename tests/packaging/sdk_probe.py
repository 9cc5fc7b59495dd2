"""Uses the SDK where it meets its dependencies (pydantic, httpx, cryptography), with no
configsvc service: bindings and their validation errors, a live HTTP call with a fallback,
the rate limiter, the keyring and the sealed cache (its one private part).

Run with the interpreter of an environment that holds the SDK distribution alone
(tests/packaging does, and so can you with an older pydantic, to check a floor). Prints
`probe ok` and exits 0, or fails with a traceback. Only the standard library and the SDK.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import sys
import tempfile
import threading
import time
from typing import Any

from configsvc_client import ClientOptions, ConfigClient
from configsvc_client._cache import CachedState, SnapshotCache
from configsvc_client.kinds import AuthKeys, ModelEndpoints, RateLimits
from configsvc_client.live import LiveHTTPClient, LiveKeyring, LiveRateLimiter, hash_key
from configsvc_client.testing import InMemorySource
from pydantic import model_validator

FAST = ClientOptions(start_timeout=5, stop_timeout=5)
KEY = "team-a-secret-key"


class _Upstream(http.server.BaseHTTPRequestHandler):
    """An OpenAI-like endpoint: `/broken/...` answers 503, anything else 200 with its name."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status = 503 if self.path.startswith("/broken/") else 200
        body = json.dumps({"path": self.path}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


class NeedsChat(RateLimits):
    @model_validator(mode="after")
    def _needs_chat(self) -> NeedsChat:
        if "chat" not in self.limits:
            raise ValueError("a 'chat' limit is required")
        return self


def models_spec(base: str) -> dict[str, Any]:
    return {
        "default": "broken",
        "fallbacks": ["good"],
        "endpoints": {
            "broken": {
                "base_url": f"{base}/broken/v1",
                "model": "m",
                "retry": {"attempts": 1},
                "timeout": {"read": 5},
            },
            "good": {"base_url": f"{base}/good/v1", "model": "m", "api_key": "sk-x"},
        },
        "tasks": {"classify": {"timeout": {"read": 2}}},
    }


async def live_call(models: Any) -> None:
    async with LiveHTTPClient(models) as http:
        answer = await http.post("/chat/completions", json={"messages": []})
    assert answer.status_code == 200, answer.text
    assert answer.json()["path"] == "/good/v1/chat/completions", answer.text


def main() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    source = InMemorySource()
    source.put("prod/chat-models", "ModelEndpoints", models_spec(base))
    source.put("prod/limits", "RateLimits", {"limits": {"chat": {"requests_per_second": 1}}})
    key = {"id": "team-a", "sha256": hash_key(KEY), "scopes": ["chat"], "state": "active"}
    source.put("prod/keys", "AuthKeys", {"keys": [key]})
    with ConfigClient.from_source(source, namespaces=["prod"], options=FAST) as client:
        models = client.bind("prod/chat-models", ModelEndpoints)
        limits = client.bind("prod/limits", NeedsChat)
        raw = client.bind("prod/limits")
        keys = client.bind("prod/keys", AuthKeys)
        assert models.value is not None and models.value.default == "broken"
        assert raw.value is not None and raw.value["limits"]["chat"]["requests_per_second"] == 1
        asyncio.run(live_call(models))
        limiter = LiveRateLimiter(limits, "chat")
        assert limiter.try_acquire() and not limiter.try_acquire()
        keyring = LiveKeyring(keys)
        found = keyring.verify(KEY, scope="chat")
        assert found is not None and found.id == "team-a"
        assert keyring.verify("wrong") is None
        # a cross-field rule, pinned to its field; the previous value stays
        broken = {**models_spec(base), "default": "nowhere"}
        source.put("prod/chat-models", "ModelEndpoints", broken)
        assert models.error is not None and "spec.default" in models.error, models.error
        assert models.value.default == "broken"
        source.put("prod/limits", "RateLimits", {"limits": {}})
        assert limits.error is not None and "a 'chat' limit is required" in limits.error
        assert (client.status.error or "").startswith("invalid_document: ")
        documents = tuple(client.documents().values())
    # the last-known-good cache, sealed with a key derived from the token (cryptography)
    cache = SnapshotCache(tempfile.mkdtemp(), ("prod",), "a-reader-token")
    state = CachedState(revision=9, through={"prod": 9}, documents=documents, saved_at=time.time())
    assert cache.save(state)
    loaded = cache.load()
    assert loaded is not None and sorted(d.key for d in loaded.documents) == [
        "prod/chat-models",
        "prod/keys",
        "prod/limits",
    ]
    assert SnapshotCache(cache.path.parent, ("prod",), "another-token").load() is None
    server.shutdown()
    print("probe ok", flush=True)


if __name__ == "__main__":
    main()
    sys.exit(0)
