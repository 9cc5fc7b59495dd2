"""Fleet test helpers: report bodies, reading the fleet, a reporter in a child process."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

CHILD = Path(__file__).with_name("sdk_child.py")
"""A ConfigClient in its own process (see that file)."""


def applied(
    version: int, revision: int = 1, at: str = "2026-11-22T01:02:03.456Z"
) -> dict[str, Any]:
    return {"version": version, "revision": revision, "applied_at": at}


def report(
    instance: str,
    *,
    namespaces: Sequence[str] = ("prod",),
    documents: dict[str, Any] | None = None,
    rejected: dict[str, Any] | None = None,
    interval: float = 30.0,
    **extra: Any,
) -> dict[str, Any]:
    """A valid report body of `instance`."""
    return {
        "instance": instance,
        "app": "gateway",
        "labels": {"region": "eu"},
        "sdk": "test/1",
        "host": "test-host",
        "pid": 4242,
        "mode": "streaming",
        "documents": {"prod/limits": applied(1)} if documents is None else documents,
        "rejected": rejected or {},
        "namespaces": list(namespaces),
        "report_interval": interval,
        **extra,
    }


def create_token(
    client: httpx.Client, name: str, role: str = "reader", namespaces: Sequence[str] = ("*",)
) -> str:
    body = {"name": name, "role": role, "namespaces": list(namespaces)}
    response = client.post("/v1/tokens", json=body)
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


def post(client: httpx.Client, body: Any) -> httpx.Response:
    return client.post("/v1/fleet/reports", json=body)


def items(client: httpx.Client, namespace: str = "prod") -> dict[str, dict[str, Any]]:
    """The fleet of `namespace` by instance id."""
    response = client.get("/v1/fleet", params={"namespace": namespace})
    assert response.status_code == 200, response.text
    return {item["instance"]: item for item in response.json()["items"]}


def document_fleet(client: httpx.Client, ref: str) -> dict[str, Any]:
    response = client.get(f"/v1/configs/{ref}/fleet")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


class Child:
    """A ConfigClient in a child process (`sdk_child.py`): it prints its instance id, then
    one JSON status line per command it is given on stdin."""

    def __init__(
        self,
        urls: Sequence[str],
        token: str,
        *,
        namespaces: Sequence[str] = ("prod",),
        interval: float = 1.0,
        app: str = "gateway",
        labels: dict[str, str] | None = None,
        strict: bool = False,
    ) -> None:
        config = {
            "urls": list(urls),
            "token": token,
            "namespaces": list(namespaces),
            "interval": interval,
            "app": app,
            "labels": labels or {},
            "strict": strict,
        }
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith("ready "), line
        self.instance = line.split()[1]

    def ask(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        answer: dict[str, Any] = json.loads(self.proc.stdout.readline())
        return answer

    def stop(self) -> None:
        """`client.stop()` (it says goodbye), then the process ends."""
        self.ask("stop")
        self.proc.wait(10)

    def kill(self) -> float:
        """SIGKILL: no goodbye. Returns when it died (monotonic)."""
        self.proc.kill()
        self.proc.wait(10)
        return time.monotonic()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
