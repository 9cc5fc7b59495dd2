"""Rollout test helpers: many SDK clients in a child process, starting rollouts, and which
instances a rollout must choose (computed here from the rule, not read from the service)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
from support import SseReader

CHILD = Path(__file__).with_name("fleet_child.py")
KEY = "prod/limits"


def limits(rps: float) -> dict[str, Any]:
    return {"limits": {"chat": {"requests_per_second": rps, "burst": 1}}}


def expected_chosen(
    rollout_id: str,
    percent: float,
    identities: Mapping[str, Mapping[str, str]],
    match: Mapping[str, str] | None = None,
) -> set[str]:
    """The instances the contract's rule chooses: labels include `match`, and
    sha256(rollout id + "/" + instance) (8 bytes, big-endian) mod 10,000 < percent x 100."""
    chosen = set()
    for instance, labels in identities.items():
        if any(labels.get(k) != v for k, v in (match or {}).items()):
            continue
        digest = hashlib.sha256(f"{rollout_id}/{instance}".encode()).digest()
        if int.from_bytes(digest[:8], "big") % 10_000 < round(percent * 100):
            chosen.add(instance)
    return chosen


def start_rollout(api: httpx.Client, key: str = KEY, **body: Any) -> dict[str, Any]:
    """Start a rollout of `key` (201 expected)."""
    response = api.post(f"/v1/configs/{key}/rollouts", json=body)
    assert response.status_code == 201, response.text
    found: dict[str, Any] = response.json()
    return found


def current(api: httpx.Client, key: str = KEY) -> dict[str, Any]:
    response = api.get(f"/v1/configs/{key}/rollouts/current")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def act(api: httpx.Client, action: str, key: str = KEY, **body: Any) -> dict[str, Any]:
    response = api.post(f"/v1/configs/{key}/rollouts/current/{action}", json=body or None)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


class Fleet:
    """SDK clients in one child process (`fleet_child.py`), each with its own instance id."""

    def __init__(
        self,
        urls: Sequence[str],
        token: str,
        identities: Mapping[str, Mapping[str, str]],
        *,
        strict: Sequence[str] = (),
        polling: bool = False,
        namespace: str = "prod",
        key: str = KEY,
    ) -> None:
        self.identities = dict(identities)
        config = {
            "urls": list(urls),
            "token": token,
            "namespace": namespace,
            "key": key,
            "polling": polling,
            "clients": [
                {"instance": i, "labels": dict(labels), "strict": i in strict}
                for i, labels in identities.items()
            ],
        }
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.strip() == "ready", line

    def held(self) -> dict[str, dict[str, Any]]:
        """Each client's applied version of the document (and revision, rollout, mode)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("versions\n")
        self.proc.stdin.flush()
        found: dict[str, dict[str, Any]] = json.loads(self.proc.stdout.readline())
        return found

    def on_version(self, version: int) -> set[str]:
        return {i for i, held in self.held().items() if held["version"] == version}

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            try:
                self.proc.stdin.write("stop\n")
                self.proc.stdin.flush()
                self.proc.wait(15)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(10)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


def identity_headers(instance: str, labels: Mapping[str, str] | None = None) -> dict[str, str]:
    """The headers an SDK instance names itself with."""
    headers = {"X-Configsvc-Instance": instance}
    if labels is not None:
        headers["X-Configsvc-Labels"] = json.dumps(dict(labels))
    return headers


def pick(rollout_id: str, percent: float, chosen: bool, prefix: str = "probe") -> str:
    """An instance id the rule chooses (or does not choose) at `percent`."""
    for n in range(10_000):
        instance = f"{prefix}-{n}"
        if bool(expected_chosen(rollout_id, percent, {instance: {}})) == chosen:
            return instance
    raise AssertionError("no such instance id")


QUIET_NOW = 0.001
"""How long `quiet(0)` looks: what has already arrived."""


class Stream(SseReader):
    """One watch stream of `namespace` sent with the given headers (an SDK instance's
    identity), read in a thread; `next()` returns its events in order (comments skipped),
    None once it ended."""

    def __init__(
        self,
        url: str,
        token: str,
        namespace: str = "prod",
        headers: Mapping[str, str] | None = None,
        last_event_id: int | None = None,
    ) -> None:
        super().__init__(
            url, token, [namespace], last_event_id=last_event_id, extra_headers=headers
        )

    def quiet(self, seconds: float) -> bool:
        """True when no event arrives within `seconds` (0: none has arrived)."""
        try:
            event = self.next(timeout=seconds or QUIET_NOW)
        except TimeoutError:
            return True
        if event is not None:
            self.events.put(event)  # not lost (at the end of the queue: only for checks)
        return False
