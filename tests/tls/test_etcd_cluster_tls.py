"""A 3-member etcd cluster serving clients over TLS only (client certificates required):
the service, given every member by name, loses the member it uses and goes on, with its
watch, on the others, each still checked against its own name."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support import ADMIN_TOKEN, SseReader
from tls.tlstools import HttpsService, Pki, start_https_service

from tests.faults._cluster import EtcdCluster

RECOVERY_SECONDS = 30.0


@pytest.fixture
def tls_cluster(pki: Pki, tmp_path: Path) -> Iterator[EtcdCluster]:
    cluster = EtcdCluster(tmp_path / "etcd")
    probe = pki.client_context()
    for member in cluster.members:
        member.client_tls = probe
        member.extra_args = [
            "--cert-file", str(pki.server.cert),
            "--key-file", str(pki.server.key),
            "--trusted-ca-file", str(pki.ca.cert_path),
            "--client-cert-auth",
        ]  # fmt: skip
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def service(pki: Pki, tls_cluster: EtcdCluster) -> Iterator[HttpsService]:
    # the names differ from member to member: each channel checks its own
    hosts = ["localhost", "127.0.0.1", "localhost"]
    urls = [
        f"https://{host}:{m.client_port}"
        for host, m in zip(hosts, tls_cluster.members, strict=True)
    ]
    running = start_https_service(
        None,
        ",".join(urls),
        etcd_ca=pki.ca.cert_path,
        etcd_cert=pki.client.cert,
        etcd_key=pki.client.key,
    )
    yield running
    running.stop()


def put_until_written(api: httpx.Client, rps: int) -> int:
    """Retry a write until it is acknowledged (a 503 while the service fails over)."""
    deadline = time.monotonic() + RECOVERY_SECONDS
    body = {"kind": "RateLimits", "spec": {"limits": {"chat": {"requests_per_second": rps}}}}
    while True:
        answer = api.put("/v1/configs/prod/limits", json=body)
        if answer.status_code in (200, 201):
            version: int = answer.json()["version"]
            return version
        assert answer.status_code == 503, answer.text
        assert time.monotonic() < deadline, "no write went through after the member died"
        time.sleep(0.1)


@pytest.mark.slow  # three TLS members to start: ~30 s on a loaded 2-core machine
def test_losing_the_member_in_use_moves_to_the_next(
    service: HttpsService, tls_cluster: EtcdCluster
) -> None:
    reader = SseReader(service.url, ADMIN_TOKEN, ["prod"], timeout=RECOVERY_SECONDS)
    try:
        assert reader.next().event == "snapshot"
        with service.client() as api:
            assert put_until_written(api, 1) == 1
            assert reader.next().data["version"] == 1  # type: ignore[union-attr]
            tls_cluster.members[0].kill()  # the member the service talks to
            version = put_until_written(api, 2)
            event = reader.next(timeout=RECOVERY_SECONDS)  # the store's watch moved too
            assert event is not None and event.data["version"] == version
            assert api.get("/readyz").status_code == 200
            assert api.get("/v1/configs/prod/limits").json()["version"] == version
    finally:
        reader.close()
