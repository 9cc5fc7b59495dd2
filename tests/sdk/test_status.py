"""What `client.status` tells against a real service."""

from __future__ import annotations

from pathlib import Path

import httpx
from configsvc_client import ConfigClient
from support import RunningService

from tests.sdk.helpers import FAST, limits, put, wait_until


def test_a_cache_that_cannot_be_written_shows_in_status(
    sdk_service: RunningService, admin: httpx.Client, tmp_path: Path
) -> None:
    put(admin, "prod/limits", limits(1))
    blocker = tmp_path / "occupied"
    blocker.write_text("a file where the cache directory should be")
    client = ConfigClient(
        sdk_service.url,
        sdk_service.admin_token,
        namespaces=["prod"],
        cache_dir=blocker / "cache",
        options=FAST,
    )
    client.start()
    try:
        wait_until(lambda: client.status.cache_error is not None)
        assert "occupied" in (client.status.cache_error or "")
        assert client.status.mode == "streaming" and client.status.error is None
    finally:
        client.stop()
