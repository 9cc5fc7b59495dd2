"""HTTPS end to end: the SDK streams over TLS (uvicorn on asyncio and on uvloop), the watch
connection is still taken over from uvicorn, and streams end cleanly either way."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator

import httpx
import pytest
from configsvc_client import ClientOptions, ConfigClient, ConfigUnavailable
from configsvc_client.kinds import RateLimits
from support import ADMIN_TOKEN
from tls.tlstools import HttpsService, Pki, metric, start_https_service, wait_until

from configsvc.asgi_server import GRACEFUL_SHUTDOWN_SECONDS
from configsvc.embedded.process import EtcdProcess

KEEPALIVE = 0.2
FAST = ClientOptions(
    start_timeout=5,
    poll_interval=0.1,
    backoff_initial=0.01,
    backoff_max=0.2,
    server_keepalive=KEEPALIVE * 2.5,
    connect_timeout=2,
    read_timeout=2,
    cache_fallback_after=0.5,
    auth_retry_interval=0.5,
)

REFUSED_WITHIN = 1.0
"""start_timeout of the clients expected to fail (an untrusted certificate)."""


def limits(rps: float) -> dict[str, object]:
    return {"kind": "RateLimits", "spec": {"limits": {"chat": {"requests_per_second": rps}}}}


@pytest.fixture(params=["asyncio", "uvloop"])
def https_service(
    request: pytest.FixtureRequest, pki: Pki, etcd: EtcdProcess
) -> Iterator[HttpsService]:
    """The service over HTTPS, on each of the event loops uvicorn may run."""
    service = start_https_service(pki, etcd.client_url, loop=request.param, keepalive=KEEPALIVE)
    yield service
    service.stop()


@pytest.fixture
def api(https_service: HttpsService) -> Iterator[httpx.Client]:
    with https_service.client() as client:
        yield client


def test_sdk_streams_over_https_on_a_taken_over_connection(
    https_service: HttpsService, pki: Pki, api: httpx.Client
) -> None:
    assert api.put("/v1/configs/prod/limits", json=limits(1)).status_code == 201
    client = ConfigClient(
        https_service.url, ADMIN_TOKEN, namespaces=["prod"], options=FAST, ca=pki.ca.cert_path
    )
    bound = client.bind("prod/limits", RateLimits)
    client.start()
    try:
        assert client.status.mode == "streaming"
        for rps in (2, 3, 4):
            assert api.put("/v1/configs/prod/limits", json=limits(rps)).status_code == 200
            wait_until(
                lambda rps=rps: (
                    bound.value is not None
                    and bound.value.limits["chat"].requests_per_second == rps
                ),
                message=f"rps {rps} over the stream",
            )
        assert client.status.mode == "streaming"  # keep-alives arrive over TLS too
        # the connection was taken from uvicorn, not served through ASGI
        assert metric(api, "configsvc_watch_direct_fallbacks_total") == 0
        assert metric(api, "configsvc_watch_subscribers") == 1
    finally:
        client.stop()
    # the client went away: the taken-over TLS connection noticed
    wait_until(lambda: metric(api, "configsvc_watch_subscribers") == 0, message="stream gone")


def test_a_stream_ended_by_the_service_closes_cleanly_over_tls(
    https_service: HttpsService, pki: Pki, api: httpx.Client
) -> None:
    """A revoked token's stream is ended by the service (last chunk, TLS close): the SDK
    sees the end, is refused on its next try, and says so."""
    created = api.post("/v1/tokens", json={"name": "svc", "role": "reader", "namespaces": ["prod"]})
    token = created.json()["token"]
    api.put("/v1/configs/prod/limits", json=limits(1))
    client = ConfigClient(
        https_service.url, token, namespaces=["prod"], options=FAST, ca=pki.ca.cert_path
    )
    client.start()
    try:
        assert client.status.mode == "streaming"
        assert api.delete("/v1/tokens/svc").status_code == 200
        wait_until(lambda: client.status.error == "unauthorized", message="refused")
        assert metric(api, "configsvc_watch_subscribers") == 0
    finally:
        client.stop()


def test_shutdown_ends_tls_streams_at_once(
    https_service: HttpsService, pki: Pki, api: httpx.Client
) -> None:
    """Neither the stream nor the idle keep-alive connection of `api` (a client that is not
    reading, so never answers the TLS close) holds the shutdown."""
    api.put("/v1/configs/prod/limits", json=limits(1))
    client = ConfigClient(
        https_service.url, ADMIN_TOKEN, namespaces=["prod"], options=FAST, ca=pki.ca.cert_path
    )
    client.start()
    try:
        started = time.monotonic()
        https_service.server.should_exit = True
        https_service.thread.join(timeout=10)
        assert not https_service.thread.is_alive()
        # well under uvicorn's graceful timeout (5 s), which a lingering TLS close would take
        assert time.monotonic() - started < GRACEFUL_SHUTDOWN_SECONDS
        wait_until(lambda: client.status.mode != "streaming", message="stream ended")
    finally:
        client.stop()


def test_sdk_trust_settings(
    https_service: HttpsService, pki: Pki, api: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.put("/v1/configs/prod/limits", json=limits(1))

    def first_value(start_timeout: float = 5, **tls: object) -> float:
        options = FAST.replace(start_timeout=start_timeout)
        client = ConfigClient(https_service.url, ADMIN_TOKEN, namespaces=["prod"],
                              options=options, **tls)  # type: ignore[arg-type]  # fmt: skip
        bound = client.bind("prod/limits", RateLimits)
        client.start()
        try:
            assert bound.value is not None
            return bound.value.limits["chat"].requests_per_second
        finally:
            client.stop()

    # the default bundle does not hold the tests' CA: refused, nothing cached
    with pytest.raises(ConfigUnavailable):
        first_value(start_timeout=REFUSED_WITHIN)
    with pytest.raises(ConfigUnavailable):
        first_value(start_timeout=REFUSED_WITHIN, ca=pki.other_ca.cert_path)
    assert first_value(ca=str(pki.ca.cert_path)) == 1
    assert first_value(verify=pki.client_context(with_cert=False)) == 1
    assert first_value(verify=False) == 1
    monkeypatch.setenv("CONFIGSVC_CA", str(pki.ca.cert_path))
    assert first_value() == 1
    with pytest.raises(ConfigUnavailable):  # an explicit setting wins over the variable
        first_value(start_timeout=REFUSED_WITHIN, verify=ssl.create_default_context())


def test_bad_sdk_trust_settings_fail_at_construction(pki: Pki) -> None:
    with pytest.raises(ValueError, match="cannot load the CA file"):
        ConfigClient("https://localhost:1", namespaces=["prod"], ca=pki.server.key)
    with pytest.raises(ValueError, match="not both"):
        ConfigClient("https://localhost:1", namespaces=["prod"], ca=pki.ca.cert_path,
                     verify=False)  # fmt: skip


def test_plain_http_to_the_https_port_gets_no_answer(https_service: HttpsService) -> None:
    plain = https_service.url.replace("https://", "http://")
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{plain}/healthz", timeout=2)


def test_tls_1_2_with_forward_secrecy_and_aead_only(https_service: HttpsService, pki: Pki) -> None:
    import socket

    port = int(https_service.url.rsplit(":", 1)[1])
    context = pki.client_context(with_cert=False)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.version() == "TLSv1.2"
        name, _defined_in, _bits = tls.cipher()  # type: ignore[misc]
        assert name.startswith(("ECDHE-", "DHE-")), name
        assert "GCM" in name or "CHACHA20" in name, name
    cbc_only = pki.client_context(with_cert=False)
    cbc_only.maximum_version = ssl.TLSVersion.TLSv1_2
    cbc_only.set_ciphers("ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA")
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        pytest.raises(ssl.SSLError),
    ):
        cbc_only.wrap_socket(raw, server_hostname="localhost")
