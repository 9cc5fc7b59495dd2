"""etcd killed or frozen under a running service: 503 in bounded time, then recovery alone."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from support import RunningService, start_service

from configsvc.embedded.process import EtcdProcess
from tests.api.helpers import error_code, freeze, put_rate

ANSWER_WITHIN = 15.0
"""The contract: with etcd down, writes answer 503 within this many seconds."""
RECOVER_WITHIN = 15.0
"""How long the service may take to notice that etcd is back."""
FROZEN_FOR = 3.0
"""How long etcd stays stopped (SIGSTOP) in the freeze test."""


@pytest.fixture
def outage_service(etcd: EtcdProcess) -> Iterator[RunningService]:
    running = start_service(etcd, store_timeout=1.0)
    yield running
    etcd.signal(signal.SIGCONT)
    running.stop()


def timed(client: httpx.Client, method: str, path: str, **kwargs) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = client.request(method, path, **kwargs)
    return response, time.monotonic() - started


def assert_unavailable(client: httpx.Client, token_client: httpx.Client) -> None:
    """Writes, reads and readiness all answer 503 in bounded time; liveness stays 200."""
    write, took = timed(
        client, "PUT", "/v1/configs/prod/limits", json={"kind": "RateLimits", "spec": {}}
    )
    assert write.status_code == 503, write.text
    assert error_code(write) == "store_unavailable"
    assert took < ANSWER_WITHIN, took
    delete, took = timed(client, "DELETE", "/v1/configs/prod/limits")
    assert delete.status_code == 503
    assert took < ANSWER_WITHIN
    read, took = timed(client, "GET", "/v1/configs/prod/limits")
    assert read.status_code == 503
    assert took < ANSWER_WITHIN
    ready, took = timed(client, "GET", "/readyz")
    assert ready.status_code != 200
    assert took < ANSWER_WITHIN
    # a stored token cannot be checked: the service says so, it does not say 401
    by_token, took = timed(token_client, "GET", "/v1/configs/prod/limits")
    assert by_token.status_code == 503, by_token.text
    assert took < ANSWER_WITHIN
    assert client.get("/healthz").status_code == 200


def wait_recovered(client: httpx.Client, rps: float) -> float:
    """Seconds until /readyz is 200 and a write succeeds again."""
    started = time.monotonic()
    deadline = started + RECOVER_WITHIN
    seen: list[str] = []
    while time.monotonic() < deadline:
        try:
            ready = client.get("/readyz", timeout=5)
            seen.append(f"{time.monotonic() - started:.2f} readyz {ready.status_code} {ready.text}")
            if ready.status_code == 200:
                write = put_rate(client, "prod", "limits", rps=rps, timeout=5)
                seen.append(f"{time.monotonic() - started:.2f} put {write.status_code}")
                if write.status_code in (200, 201):
                    return time.monotonic() - started
        except httpx.HTTPError as exc:
            seen.append(f"{time.monotonic() - started:.2f} {exc!r}")
        time.sleep(0.1)
    answers = "\n".join([*seen[:3], "...", *seen[-3:]])
    raise AssertionError(f"the service did not recover within {RECOVER_WITHIN} s:\n{answers}")


def test_etcd_killed_and_restarted(
    outage_service: RunningService, etcd: EtcdProcess, api: httpx.Client, make_token
) -> None:
    with outage_service.client() as client:
        token = make_token("reader", "reader", ["prod"])
        assert put_rate(client, "prod", "limits", rps=1).status_code == 201
        with outage_service.client(token) as token_client:
            etcd.kill()
            assert_unavailable(client, token_client)
            assert outage_service.thread.is_alive()
            etcd.restart()
            wait_recovered(client, rps=2)
            assert token_client.get("/v1/configs/prod/limits").status_code == 200
        doc = client.get("/v1/configs/prod/limits").json()
        assert doc["version"] == 2
        history = client.get("/v1/configs/prod/limits/history").json()["items"]
        assert [item["version"] for item in history] == [2, 1]


def test_etcd_frozen_then_resumed(
    outage_service: RunningService, etcd: EtcdProcess, make_token
) -> None:
    with outage_service.client() as client:
        token = make_token("reader", "reader", ["prod"])
        assert put_rate(client, "prod", "limits", rps=1).status_code == 201
        with outage_service.client(token) as token_client:
            freeze(etcd)
            frozen_at = time.monotonic()
            try:
                assert_unavailable(client, token_client)
                assert outage_service.thread.is_alive()
                time.sleep(max(0.0, FROZEN_FOR - (time.monotonic() - frozen_at)))
                assert client.get("/readyz").status_code != 200
            finally:
                etcd.signal(signal.SIGCONT)
            wait_recovered(client, rps=2)
            assert token_client.get("/v1/configs/prod/limits").status_code == 200
        assert client.get("/v1/configs/prod/limits").json()["version"] == 2


def test_etcd_down_with_the_default_store_timeout(
    service: RunningService, etcd: EtcdProcess, api: httpx.Client
) -> None:
    """The fixture's default timeout: still well within the contract's 15 s."""
    assert put_rate(api, "prod", "limits", rps=1).status_code == 201
    freeze(etcd)
    try:
        response, took = timed(
            api, "PUT", "/v1/configs/prod/limits", json={"kind": "RateLimits", "spec": {}}
        )
        assert response.status_code == 503
        assert took < ANSWER_WITHIN
    finally:
        etcd.signal(signal.SIGCONT)
    wait_recovered(api, rps=3)


def test_service_started_while_etcd_is_down_becomes_ready_when_it_returns(
    etcd: EtcdProcess,
) -> None:
    etcd.kill()
    started: list[RunningService] = []
    # start_service waits until /readyz is 200; etcd is restarted from this thread because
    # its parent-death signal follows the thread that spawned it
    starter = threading.Thread(target=lambda: started.append(start_service(etcd)))
    starter.start()
    time.sleep(1.0)
    assert not started, "ready while etcd is down"
    etcd.restart()
    starter.join(timeout=15)
    assert started, "the service did not become ready after etcd came back"
    try:
        with started[0].client() as client:
            assert put_rate(client, "prod", "limits").status_code == 201
    finally:
        started[0].stop()
