"""Every ```python block of docs/live.md runs, in order, against a real service."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from configsvc_client.live import hash_key
from support import RunningService

from tests.live.servers import FakeLLM, put

DOC = Path(__file__).resolve().parents[2] / "docs" / "live.md"


def python_blocks() -> list[str]:
    """The runnable blocks (fenced ```python; ```python no-run ones are signatures)."""
    return re.findall(r"^```python\n(.*?)^```", DOC.read_text(), flags=re.S | re.M)


def test_doc_snippets_run(
    api: httpx.Client,
    service: RunningService,
    fake_llm: Callable[..., FakeLLM],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    local = fake_llm("local")
    put(
        api,
        "prod/chat-models",
        "ModelEndpoints",
        {"default": "local", "endpoints": {"local": {"base_url": local.base_url, "model": "m"}}},
    )
    put(
        api,
        "prod/limits",
        "RateLimits",
        {"limits": {"chat": {"requests_per_second": 5, "tokens_per_minute": 1000}}},
    )
    put(
        api,
        "prod/keys",
        "AuthKeys",
        {"keys": [{"id": "team-a", "sha256": hash_key("sk-demo-team-a"), "scopes": ["chat"]}]},
    )
    monkeypatch.setenv("CONFIGSVC_URL", service.url)
    monkeypatch.setenv("CONFIGSVC_TOKEN", service.admin_token)

    blocks = python_blocks()
    assert len(blocks) == 5
    for index, block in enumerate(blocks):
        namespace: dict[str, object] = {"__name__": f"docs_live_{index}"}
        exec(compile(block, f"{DOC}:block{index}", "exec"), namespace)
    assert capsys.readouterr().out.split() == ["[local]", "hello", "[local]", "hello", "again"]
    assert local.stats()["completions"] == 2
