"""Real servers for the live tests: uvicorn in a thread, the example fake model server,
and helpers to push documents through the real configsvc and wait until a client has them."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from configsvc.embedded.process import free_port

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
if str(EXAMPLES) not in sys.path:
    sys.path.insert(0, str(EXAMPLES))

APPLY_TIMEOUT = 5.0


class ServerThread:
    """An ASGI app served by uvicorn on a free loopback port, in a thread."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="critical", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


class FakeLLM:
    """The example fake model server (examples/fake_llm.py), driven by its admin API."""

    def __init__(self, name: str, **behaviour: Any) -> None:
        import fake_llm

        self.name = name
        self.server = ServerThread(
            fake_llm.create_app(name, fake_llm.Behaviour().update(behaviour))
        ).start()
        self.url = self.server.url
        self.base_url = f"{self.url}/v1"
        # Plain http; verify=False skips loading a CA bundle (~0.2 s per client).
        self.admin = httpx.Client(base_url=self.url, verify=False, timeout=5)

    def set(self, **behaviour: Any) -> None:
        self.admin.post("/admin/behaviour", json=behaviour).raise_for_status()

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self.admin.get("/admin/stats").json()
        return stats

    def stop(self) -> None:
        self.admin.close()
        self.server.stop()


def put(api: httpx.Client, key: str, kind: str, spec: dict[str, Any]) -> int:
    """PUT document `key` ("ns/name") through the real service; returns its version."""
    response = api.put(f"/v1/configs/{key}", json={"kind": kind, "spec": spec})
    assert response.status_code in (200, 201), response.text
    version: int = response.json()["version"]
    return version


def delete(api: httpx.Client, key: str) -> None:
    """DELETE document `key` through the real service."""
    response = api.delete(f"/v1/configs/{key}")
    assert response.status_code in (200, 204), response.text


def create_token(api: httpx.Client, name: str, **fields: Any) -> str:
    """Create a token (`role`, `namespaces`, `secrets`); returns its secret."""
    response = api.post("/v1/tokens", json={"name": name, **fields})
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


async def until(condition: Callable[[], bool], within: float = APPLY_TIMEOUT) -> None:
    """Wait (without blocking the loop) until `condition()` holds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


def stalling_llm(name: str, stall: float) -> Any:
    """An OpenAI-compatible ASGI app whose streamed answers send their first chunk at
    once, then stall for `stall` seconds before the rest (a model server that hangs
    mid-generation)."""
    import json as _json

    def chunk(content: str | None, finish: str | None = None) -> bytes:
        delta = {} if content is None else {"content": content}
        body = {
            "id": "chatcmpl-stall",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": name,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {_json.dumps(body)}\n\n".encode()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        while (await receive()).get("more_body"):
            pass
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": chunk(f"[{name}]"), "more_body": True})
        await asyncio.sleep(stall)
        for part in (chunk(" late"), chunk(None, "stop"), b"data: [DONE]\n\n"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app


def run_openai_live_through_a_switch(
    python: str | Path,
    env: dict[str, str],
    api: httpx.Client,
    spec: dict[str, Any],
    prompts: int,
    timeout: float,
    cwd: Path | None = None,
) -> str:
    """Run examples/openai_live.py with `python`; once it has answered from `local`, switch
    the live document's default to `hosted` and let it finish. Its standard output."""
    prompts_args = [f"p{i}" for i in range(prompts)]
    command = [str(python), str(EXAMPLES / "openai_live.py"), "--pause", "0.1", "--prompts"]
    script = subprocess.Popen(
        [*command, *prompts_args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert script.stdout is not None
        first = script.stdout.readline()
        if first != "local-34b: [local] p0\n":
            script.kill()
            raise AssertionError(first + script.communicate()[1])
        spec["default"] = "hosted"
        put(api, "prod/chat-models", "ModelEndpoints", spec)
        out, err = script.communicate(timeout=timeout)
    finally:
        if script.poll() is None:
            script.kill()
            script.communicate()
    assert script.returncode == 0, err
    return out
