"""etcd's own user/password auth: a user allowed only the service's key prefix runs the
whole service; wrong or missing credentials say so; tokens that etcd forgets (a restart, or
`--auth-token-ttl` of disuse) are renewed, for calls and for the store's watch alike."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import ADMIN_TOKEN, RunningService, SseReader, start_service
from tls.tlstools import enable_auth, start_https_service

from configsvc.embedded.binary import find_etcd_binary
from configsvc.embedded.process import EtcdProcess

USER, PASSWORD = "configsvc", "svc-password-for-tests"
TOKEN_TTL_SECONDS = 1
LIMITS = {"kind": "RateLimits", "spec": {"limits": {"chat": {"requests_per_second": 5}}}}


@pytest.fixture
def auth_etcd(tmp_path: Path) -> Iterator[EtcdProcess]:
    """etcd with auth enabled, tokens that expire after 1 s of disuse, and a user
    `configsvc` that may read and write `/configsvc/` alone."""
    proc = EtcdProcess(
        binary=find_etcd_binary(None),
        data_dir=tmp_path / "etcd-auth",
        fast_raft=True,
        log_path=tmp_path / "etcd-auth.log",
        extra_args=["--auth-token-ttl", str(TOKEN_TTL_SECONDS)],
    )
    proc.start()
    asyncio.run(enable_auth(proc.client_url, {USER: (PASSWORD, "/configsvc/")}))
    yield proc
    proc.stop()


@pytest.fixture
def service(auth_etcd: EtcdProcess) -> Iterator[RunningService]:
    running = start_service(auth_etcd, etcd_user=USER, etcd_password=PASSWORD)
    yield running
    running.stop()


def put_limits(service: RunningService, rps: float) -> int:
    body = {**LIMITS, "spec": {"limits": {"chat": {"requests_per_second": rps}}}}
    with service.client() as api:
        response = api.put("/v1/configs/prod/limits", json=body)
    assert response.status_code in (200, 201), response.text
    version: int = response.json()["version"]
    return version


def test_a_user_allowed_only_the_prefix_runs_the_service(service: RunningService) -> None:
    reader = SseReader(service.url, ADMIN_TOKEN, ["prod"])
    try:
        assert reader.next().event == "snapshot"
        put_limits(service, 1)
        event = reader.next()
        assert event is not None and event.data["version"] == 1
        with service.client() as api:
            created = api.post(
                "/v1/tokens", json={"name": "ci", "role": "reader", "namespaces": ["*"]}
            )
            assert created.status_code == 201
            assert api.get("/v1/configs/prod/limits/history").status_code == 200
            assert api.get("/readyz").json()["status"] == "ready"
    finally:
        reader.close()


def test_tokens_etcd_forgot_are_renewed(service: RunningService, auth_etcd: EtcdProcess) -> None:
    """After etcd's token TTL of disuse, and again after a restart of etcd (which forgets
    every token), writes work and the store's watch comes back: the stream sees them."""
    reader = SseReader(service.url, ADMIN_TOKEN, ["prod"])
    try:
        assert reader.next().event == "snapshot"
        put_limits(service, 1)
        assert reader.next().data["version"] == 1  # type: ignore[union-attr]
        time.sleep(TOKEN_TTL_SECONDS * 2.5)
        put_limits(service, 2)
        assert reader.next().data["version"] == 2  # type: ignore[union-attr]
        auth_etcd.restart()
        deadline = time.monotonic() + 15
        while True:  # the first writes may meet etcd still electing itself
            try:
                put_limits(service, 3)
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        event = reader.next(timeout=15)
        assert event is not None and event.data["version"] == 3
    finally:
        reader.close()


@pytest.mark.parametrize(
    ("credentials", "reason"),
    [
        ({"etcd_user": USER, "etcd_password": "wrong"}, f"etcd refused user {USER!r}"),
        ({}, "give --etcd-user and --etcd-password"),
    ],
)
def test_credentials_etcd_refuses_are_named(
    auth_etcd: EtcdProcess, credentials: dict[str, str], reason: str
) -> None:
    running = start_https_service(None, auth_etcd.client_url, wait_for="/healthz", **credentials)
    try:
        with running.client() as api:
            answer = api.get("/readyz")
        assert answer.status_code == 503
        assert reason in answer.json()["reason"]
        assert "wrong" not in answer.text  # no password in what the service says
    finally:
        running.stop()
