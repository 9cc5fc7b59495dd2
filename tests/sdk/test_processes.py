"""The SDK across processes: many clients in one, fork, a new process started from the cache."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from configsvc_client import ConfigClient, Document
from configsvc_client.kinds import RateLimits
from support import RunningService

from tests.sdk.helpers import FAST, ServiceProcess, limits, put, wait_until

CLIENTS = 100
UPDATES = 10


def test_a_hundred_clients_in_one_process_get_every_update_in_order(
    sdk_service: RunningService, admin: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """All share one HTTP client and SSL context (each costs ~70 ms to create)."""
    created: list[str] = []

    class CountingClient(httpx.AsyncClient):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            created.append("client")
            super().__init__(*args, **kwargs)

    real_ssl_context = httpx.create_ssl_context

    def counting_ssl_context(*args: Any, **kwargs: Any) -> Any:
        created.append("ssl")
        return real_ssl_context(*args, **kwargs)

    monkeypatch.setattr(httpx, "AsyncClient", CountingClient)
    monkeypatch.setattr(httpx, "create_ssl_context", counting_ssl_context)
    put(admin, "prod/a", limits(1))
    seen: list[list[int]] = [[] for _ in range(CLIENTS)]
    clients: list[ConfigClient] = []
    try:
        started = time.monotonic()
        for index in range(CLIENTS):
            client = ConfigClient(
                sdk_service.url, sdk_service.admin_token, namespaces=["prod"], options=FAST
            )

            def record(_old: Document | None, new: Document | None, index: int = index) -> None:
                assert new is not None
                seen[index].append(new.version)

            client.on_change(record)
            clients.append(client)
            client.start()
        start_seconds = time.monotonic() - started
        assert created.count("client") == 1
        assert created.count("ssl") <= 1
        assert start_seconds < 30, f"{CLIENTS} clients took {start_seconds:.1f} s to start"
        for n in range(2, UPDATES + 2):
            put(admin, "prod/a", limits(n))
        expected = list(range(1, UPDATES + 2))
        wait_until(lambda: all(s == expected for s in seen), timeout=20, message="all updates")
        assert all(c.status.mode == "streaming" for c in clients)
    finally:
        for client in clients:
            client.stop()


FORK = """
import json, os, sys, time
from configsvc_client import ClientOptions, ConfigClient
from configsvc_client.kinds import RateLimits
url, token, options = sys.argv[1], sys.argv[2], ClientOptions(**json.loads(sys.argv[3]))
client = ConfigClient(url, token, namespaces=["prod"], options=options)
limits = client.bind("prod/a", RateLimits)
client.start()

def wait_for_version(version):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if limits.document.version >= version and client.status.mode == "streaming":
            return True
        time.sleep(0.01)
    return False

pid = os.fork()
if pid == 0:
    os._exit(0 if wait_for_version(3) else 1)
print("forked", flush=True)
_, status = os.waitpid(pid, 0)
print(json.dumps({"child": os.waitstatus_to_exitcode(status), "parent": wait_for_version(3)}))
client.stop()
"""


def test_a_forked_child_gets_a_working_client(
    sdk_service: RunningService, admin: httpx.Client
) -> None:
    """A pre-fork server (gunicorn --preload) starts the client, then forks workers: the
    child must follow changes made after the fork. (In a fresh process: this test process
    runs the service, whose gRPC threads do not survive a fork.)"""
    put(admin, "prod/a", limits(1))
    options = {"server_keepalive": 0.1, "backoff_initial": 0.01, "backoff_max": 0.1}
    with subprocess.Popen(
        [sys.executable, "-c", FORK, sdk_service.url, sdk_service.admin_token, json.dumps(options)],
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "forked"
        put(admin, "prod/a", limits(2))
        put(admin, "prod/a", limits(3))
        report = json.loads(proc.stdout.readline())
    assert proc.returncode == 0
    assert report == {"child": 0, "parent": True}


CHILD = """
import json, sys, time
from configsvc_client import ClientOptions, ConfigClient
from configsvc_client.kinds import RateLimits
url, token, cache_dir = sys.argv[1:4]
options = ClientOptions(**json.loads(sys.argv[4]))
client = ConfigClient(url, token, namespaces=["prod"], cache_dir=cache_dir, options=options)
limits = client.bind("prod/a", RateLimits)
started = time.monotonic()
client.start()
elapsed = time.monotonic() - started
status = client.status
print(json.dumps({"mode": status.mode, "revision": status.revision, "elapsed": elapsed,
                  "error": status.error, "age": status.age,
                  "rps": limits.value.limits["chat"].requests_per_second}))
client.stop()
"""


def test_a_new_process_starts_from_the_cache_when_the_service_is_gone(
    service_process: ServiceProcess, tmp_path: Path
) -> None:
    cache_dir = tmp_path / "cache"
    with service_process.client() as api:
        put(api, "prod/a", limits(5))
        last = put(api, "prod/a", limits(6))
    with ConfigClient(
        service_process.url,
        service_process.admin_token,
        namespaces=["prod"],
        cache_dir=cache_dir,
        options=FAST,
    ) as first:
        assert first.status.revision == last["revision"]
    (cache_file,) = cache_dir.glob("*.json")
    assert stat.S_IMODE(cache_file.stat().st_mode) == 0o600

    service_process.kill()
    options = {"start_timeout": 10, "cache_fallback_after": 5, "connect_timeout": 1}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            service_process.url,
            service_process.admin_token,  # the cache is sealed with the token
            str(cache_dir),
            json.dumps(options),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["mode"] == "cached"
    assert report["rps"] == 6
    assert report["revision"] == last["revision"]
    assert report["elapsed"] < 3  # both sources failed at once: no wait for the 5 s
    assert report["error"] and report["error"].startswith("unreachable")

    # The service comes back on the same port: a client started from the cache resumes.
    client = ConfigClient(
        service_process.url,
        service_process.admin_token,
        namespaces=["prod"],
        cache_dir=cache_dir,
        options=FAST,
    )
    a = client.bind("prod/a", RateLimits)
    with client:
        assert client.status.mode == "cached"
        service_process.start()
        wait_until(lambda: client.status.mode == "streaming", timeout=10, message="streaming")
        with service_process.client() as api:
            latest = put(api, "prod/a", limits(7))
        wait_until(lambda: a.value is not None and a.value.limits["chat"].requests_per_second == 7)
    loaded = json.loads(cache_file.read_text())
    assert loaded["revision"] == latest["revision"]


def test_clients_in_threads_start_and_stop_concurrently(
    sdk_service: RunningService, admin: httpx.Client
) -> None:
    put(admin, "prod/a", limits(1))
    errors: list[BaseException] = []

    def cycle() -> None:
        try:
            for _ in range(3):
                with ConfigClient(
                    sdk_service.url, sdk_service.admin_token, namespaces=["prod"], options=FAST
                ) as client:
                    assert client.get("prod/a") is not None
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=cycle) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
