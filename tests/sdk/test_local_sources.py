"""Sources with no service: YAML files (reloaded on change) and the in-memory test source."""

from __future__ import annotations

from pathlib import Path

import pytest
from configsvc_client import ConfigClient, Document
from configsvc_client.kinds import RateLimits
from configsvc_client.testing import InMemorySource

from tests.sdk.helpers import FAST, async_wait_until, wait_until

LIMITS = """\
namespace: prod
name: limits
kind: RateLimits
spec:
  limits:
    chat: {{requests_per_second: {rps}}}
---
namespace: dev
name: limits
kind: RateLimits
spec:
  limits:
    chat: {{requests_per_second: 1}}
"""


def rps(binding: object) -> float | None:
    value = getattr(binding, "value", None)
    return None if value is None else value.limits["chat"].requests_per_second


def test_from_files_reads_and_reloads(tmp_path: Path) -> None:
    (tmp_path / "limits.yaml").write_text(LIMITS.format(rps=5))
    (tmp_path / "notes.txt").write_text("not config")
    client = ConfigClient.from_files(tmp_path, namespaces=["prod"], options=FAST)
    limits = client.bind("prod/limits", RateLimits)
    changes: list[Document | None] = []
    client.on_change(lambda _old, new: changes.append(new))
    with client:
        assert rps(limits) == 5
        assert client.status.mode == "streaming"
        assert set(client.documents()) == {"prod/limits"}  # dev is not watched
        assert limits.document is not None and limits.document.version == 1

        (tmp_path / "limits.yaml").write_text(LIMITS.format(rps=9))
        wait_until(lambda: rps(limits) == 9, message="reload")
        assert limits.document is not None and limits.document.version == 2

        (tmp_path / "limits.yaml").write_text("namespace: prod\nname: [broken")
        wait_until(lambda: client.status.error is not None, message="broken file reported")
        assert "invalid_files" in (client.status.error or "")
        assert rps(limits) == 9  # the last good value stays

        sub = tmp_path / "more"
        sub.mkdir()
        (sub / "x.yml").write_text(LIMITS.format(rps=11).split("---")[0])
        (tmp_path / "limits.yaml").unlink()
        wait_until(lambda: rps(limits) == 11, message="recovered from a subfolder file")
        assert client.status.error is None
    assert [d.version if d else None for d in changes] == [1, 2, 3]


def test_from_files_with_every_namespace(tmp_path: Path) -> None:
    (tmp_path / "limits.yaml").write_text(LIMITS.format(rps=5))
    with ConfigClient.from_files(tmp_path, options=FAST) as client:
        assert set(client.documents()) == {"prod/limits", "dev/limits"}
        (tmp_path / "limits.yaml").write_text(LIMITS.format(rps=5).split("---")[1])
        wait_until(lambda: set(client.documents()) == {"dev/limits"}, message="deleted")


def test_in_memory_source_applies_before_put_returns() -> None:
    source = InMemorySource()
    source.put("prod/limits", "RateLimits", {"limits": {"chat": {"requests_per_second": 5}}})
    client = ConfigClient.from_source(source, namespaces=["prod"])
    limits = client.bind("prod/limits", RateLimits)
    with client:
        assert rps(limits) == 5
        source.put("prod/limits", "RateLimits", {"limits": {"chat": {"requests_per_second": 6}}})
        assert rps(limits) == 6
        source.interrupt()
        assert client.status.mode == "cached" and client.status.error == "unreachable"
        source.restore()
        assert client.status.mode == "streaming" and client.status.error is None
        source.delete("prod/limits")
        assert limits.value is None
        with pytest.raises(KeyError):
            source.delete("prod/limits")


async def test_in_memory_source_in_asyncio_code() -> None:
    source = InMemorySource()
    async with ConfigClient.from_source(source, namespaces="prod") as client:
        limits = client.bind("prod/limits", RateLimits)
        assert limits.value is None
        source.put("prod/limits", "RateLimits", {"limits": {"chat": {"requests_per_second": 3}}})
        await source.settled()
        assert rps(limits) == 3
        source.interrupt("unauthorized", permanent=True)
        await source.settled()
        await async_wait_until(lambda: client.status.error == "unauthorized")


def test_start_twice_is_refused_and_restart_after_stop_works() -> None:
    source = InMemorySource()
    source.put("prod/limits", "RateLimits", {"limits": {"chat": {"requests_per_second": 5}}})
    client = ConfigClient.from_source(source, namespaces=["prod"])
    limits = client.bind("prod/limits", RateLimits)
    client.start()
    with pytest.raises(RuntimeError, match="already started"):
        client.start()
    client.stop()
    client.stop()  # idempotent
    source.put("prod/limits", "RateLimits", {"limits": {"chat": {"requests_per_second": 6}}})
    assert rps(limits) == 5  # stopped: no updates
    client.start()  # returns at once with the last values, then catches up
    wait_until(lambda: rps(limits) == 6, message="caught up")
    client.stop()
    assert client.status.mode == "stopped"
