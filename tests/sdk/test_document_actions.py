"""`Document.action`: what wrote a version (`put`, `rollback` with `rolled_back_to`), as the
SDK receives it from the stream, from polls and from its cache."""

from __future__ import annotations

from pathlib import Path

import httpx
from configsvc_client import ConfigClient, Document
from support import RunningService

from tests.sdk.helpers import FAST, limits, put, wait_until


def test_from_wire_reads_the_action_and_defaults_to_put() -> None:
    base = {"namespace": "prod", "name": "x", "kind": "RateLimits", "spec": {}}
    older = Document.from_wire(base)  # a service that does not send it
    assert (older.action, older.rolled_back_to) == ("put", None)
    rolled = Document.from_wire({**base, "action": "rollback", "rolled_back_to": 3})
    assert (rolled.action, rolled.rolled_back_to) == ("rollback", 3)
    assert Document.from_wire(rolled.to_wire()) == rolled
    assert "rolled_back_to" not in older.to_wire() and older.to_wire()["action"] == "put"


def test_a_rollback_reaches_the_client_as_a_rollback(
    sdk_service: RunningService, admin: httpx.Client, tmp_path: Path
) -> None:
    put(admin, "prod/limits", limits(1))
    put(admin, "prod/limits", limits(2))
    seen: list[tuple[int, str, int | None]] = []
    streaming = ConfigClient(
        sdk_service.url,
        sdk_service.admin_token,
        namespaces=["prod"],
        options=FAST,
        cache_dir=tmp_path,
    )
    streaming.on_change(
        lambda _old, new: new and seen.append((new.version, new.action, new.rolled_back_to))
    )
    with streaming:
        rolled = admin.post("/v1/configs/prod/limits/rollback", json={"to_version": 1})
        assert rolled.status_code == 200, rolled.text
        wait_until(lambda: len(seen) == 2, message="the rollback")
    assert seen == [(2, "put", None), (3, "rollback", 1)]

    # the cache written by the streaming client keeps it (a start with no service)
    polling = ConfigClient(
        "http://127.0.0.1:1",
        sdk_service.admin_token,
        namespaces=["prod"],
        options=FAST,
        cache_dir=tmp_path,
    )
    with polling:
        cached = polling.get("prod/limits")
        assert cached is not None and (cached.action, cached.rolled_back_to) == ("rollback", 1)
