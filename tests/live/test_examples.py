"""The examples as processes.

examples/demo.py end to end: configsvc serve, the fake upstreams and the gateway as
processes, changed through the configsvc CLI while requests flow. Slow (about 25 s on an
idle machine, mostly process start-up and ten CLI runs), so it runs with `pytest -m slow`;
the gateway itself is tested end to end in the default run (test_gateway.py).

examples/openai_live.py against the real service: a change pushed while it runs reaches
its next calls."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from support import RunningService

from tests.live.servers import EXAMPLES, FakeLLM, put, run_openai_live_through_a_switch

DEMO_TIMEOUT = 120


@pytest.mark.slow
def test_demo_sees_every_change_take_effect() -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "demo.py")],
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for seen in (
        "local-34b times out twice, hosted answers: HTTP 200 from hosted after 3 tries",
        "the same gateway now waits for local-34b: HTTP 200 from local-34b after 1 try",
        "requests go to hosted, with its api_key: HTTP 200 from hosted after 1 try",
        "5 quick requests with team-b's key: [200, 200, 429, 429, 429]",
        'Warning: 299 - "API key team-a-2026-10 is retiring',
        "the old key now: HTTP 401",
        "incomplete chunked read",
        "fell back to a non-streaming call: '[hosted] ping (no stream)'",
        "was never restarted",
    ):
        assert seen in out, out


def test_openai_live_follows_a_change_while_it_runs(
    api: httpx.Client, service: RunningService, fake_llm: Callable[..., FakeLLM]
) -> None:
    local, hosted = fake_llm("local"), fake_llm("hosted", api_key="sk-hosted")
    spec: dict[str, Any] = {
        "default": "local",
        "endpoints": {
            "local": {"base_url": local.base_url, "model": "local-34b"},
            "hosted": {"base_url": hosted.base_url, "model": "gpt-x", "api_key": "sk-hosted"},
        },
    }
    put(api, "prod/chat-models", "ModelEndpoints", spec)
    env = {**os.environ, "CONFIGSVC_URL": service.url, "CONFIGSVC_TOKEN": service.admin_token}
    out = run_openai_live_through_a_switch(sys.executable, env, api, spec, 15, DEMO_TIMEOUT)
    assert "gpt-x: [hosted] p14" in out and "  streamed: [hosted] p14" in out
    assert hosted.stats()["last_api_key"] == "sk-hosted"
