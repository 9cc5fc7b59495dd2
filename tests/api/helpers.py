"""Helpers of the REST API tests: sample documents, error shapes, snapshots of the stored state."""

from __future__ import annotations

import base64
import contextlib
import copy
import http.client
import json
import signal
import time
from pathlib import Path
from typing import Any

import httpx

from configsvc.embedded.process import EtcdProcess

LOCAL_KEY = "sk-local-secret-0123456789"
HOSTED_KEY = "sk-hosted-secret-9876543210"

MODEL_SPEC: dict[str, Any] = {
    "default": "local-34b",
    "fallbacks": ["hosted"],
    "endpoints": {
        "local-34b": {
            "base_url": "http://127.0.0.1:1234/v1",
            "model": "codebooga-34b",
            "api_key": LOCAL_KEY,
            "timeout": {"connect": 5, "read": 600, "write": 30, "pool": 5},
            "retry": {"attempts": 3, "backoff_initial": 0.5, "backoff_max": 30, "jitter": True},
        },
        "hosted": {
            "base_url": "https://api.example.com/v1",
            "model": "big-model",
            "api_key": HOSTED_KEY,
        },
    },
}

RATE_SPEC: dict[str, Any] = {
    "limits": {"chat": {"requests_per_second": 5, "burst": 10, "tokens_per_minute": 200000}}
}

STORED_PREFIXES = ("doc/", "ver/", "hist/", "hspec/", "tok/")
"""The parts of the key layout that hold documents, history and tokens."""


def model_spec(read: float = 600, **changes: Any) -> dict[str, Any]:
    """A valid ModelEndpoints spec (with secrets) whose local read timeout is `read`."""
    spec = copy.deepcopy(MODEL_SPEC)
    spec["endpoints"]["local-34b"]["timeout"]["read"] = read
    spec.update(changes)
    return spec


def rate_spec(rps: float = 5) -> dict[str, Any]:
    return {"limits": {"chat": {"requests_per_second": rps, "burst": 10}}}


def body(kind: str, spec: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "spec": spec, **extra}


def put_rate(
    client: httpx.Client, ns: str, name: str, rps: float = 5, **kwargs: Any
) -> httpx.Response:
    """PUT a RateLimits document (no secrets) with `requests_per_second` = `rps`."""
    return client.put(f"/v1/configs/{ns}/{name}", json=body("RateLimits", rate_spec(rps)), **kwargs)


def put_models(
    client: httpx.Client, ns: str, name: str, read: float = 600, **kwargs: Any
) -> httpx.Response:
    """PUT a ModelEndpoints document (with api keys) whose local read timeout is `read`."""
    return client.put(
        f"/v1/configs/{ns}/{name}", json=body("ModelEndpoints", model_spec(read)), **kwargs
    )


def error_code(response: httpx.Response) -> str:
    """The contract's error code; also checks the error shape."""
    payload = response.json()
    assert set(payload) == {"error"}, payload
    assert {"code", "message", "details"} <= set(payload["error"]), payload
    assert isinstance(payload["error"]["details"], list)
    code: str = payload["error"]["code"]
    return code


def locs(response: httpx.Response) -> list[list[Any]]:
    """The field paths of a 422's details."""
    return [detail["loc"] for detail in response.json()["error"]["details"]]


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def raw_state(etcd: EtcdProcess, prefix: str = "/configsvc/") -> dict[str, tuple[str, int]]:
    """Every stored document, version counter, history record and token, read straight from
    etcd (its JSON gateway), as {key: (value, mod_revision)}."""
    key = prefix.encode()
    end = key[:-1] + bytes([key[-1] + 1])
    conn = http.client.HTTPConnection("127.0.0.1", etcd.client_port, timeout=5)
    try:
        conn.request("POST", "/v3/kv/range", json.dumps({"key": _b64(key), "range_end": _b64(end)}))
        response = conn.getresponse()
        payload = json.loads(response.read())
    finally:
        conn.close()
    assert response.status == 200, payload
    state: dict[str, tuple[str, int]] = {}
    for kv in payload.get("kvs", []):
        name = base64.b64decode(kv["key"]).decode()
        if name.removeprefix(prefix).startswith(STORED_PREFIXES):
            value = base64.b64decode(kv.get("value", "")).decode()
            state[name] = (value, int(kv["mod_revision"]))
    return state


def api_state(client: httpx.Client, ns: str) -> dict[str, Any]:
    """What the API shows of a namespace: its listing (less the read revision) and every
    document's history."""
    listing = client.get(f"/v1/configs/{ns}")
    assert listing.status_code == 200, listing.text
    items = listing.json()["items"]
    histories = {}
    for item in items:
        history = client.get(f"/v1/configs/{ns}/{item['name']}/history")
        assert history.status_code == 200, history.text
        histories[item["name"]] = history.json()["items"]
    return {"etag": listing.headers["etag"], "items": items, "histories": histories}


class Unchanged:
    """Asserts that nothing in the store changed between `snapshot` and `check`."""

    def __init__(self, etcd: EtcdProcess, client: httpx.Client, namespaces: tuple[str, ...]):
        self.etcd = etcd
        self.client = client
        self.namespaces = namespaces
        self.before = self._state()

    def _state(self) -> tuple[dict[str, tuple[str, int]], dict[str, Any]]:
        return raw_state(self.etcd), {ns: api_state(self.client, ns) for ns in self.namespaces}

    def check(self) -> None:
        after = self._state()
        assert after[0] == self.before[0], "a refused request changed the stored keys"
        assert after[1] == self.before[1], "a refused request changed what the API shows"


def freeze(etcd: EtcdProcess, timeout: float = 5.0) -> None:
    """SIGSTOP etcd and wait until the kernel shows it stopped (all its threads)."""
    assert etcd.pid is not None
    etcd.signal(signal.SIGSTOP)
    deadline = time.monotonic() + timeout
    task_dir = Path(f"/proc/{etcd.pid}/task")
    while time.monotonic() < deadline:
        states = []
        for task in task_dir.iterdir():
            with contextlib.suppress(OSError):
                states.append((task / "stat").read_text().rsplit(")", 1)[1].split()[0])
        if states and all(state in ("T", "t") for state in states):
            return
        time.sleep(0.005)
    raise AssertionError("etcd did not stop")
