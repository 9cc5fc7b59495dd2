"""Pure logic of the TLS settings: etcd endpoints and gRPC targets, failure reasons, the
SDK's and the CLI's trust settings, the SDK's sharing of HTTP clients per TLS setting."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
from configsvc_client._http import acquire_http, release_http, ssl_context
from configsvc_client._options import TlsOptions, resolve_tls
from tls.tlstools import Pki

from configsvc.cli._options import GlobalFlags, resolve
from configsvc.errors import ConfigsvcError
from configsvc.store.etcd_connection import Endpoint, EtcdConnection, parse_endpoint


def test_endpoints_keep_their_names_and_schemes() -> None:
    assert parse_endpoint("http://127.0.0.1:2379") == Endpoint("127.0.0.1", 2379, False)
    assert parse_endpoint("https://etcd-0.etcd:2379") == Endpoint("etcd-0.etcd", 2379, True)
    assert parse_endpoint("etcd:4001") == Endpoint("etcd", 4001, False)
    assert parse_endpoint("etcd", "https") == Endpoint("etcd", 2379, True)
    assert parse_endpoint("https://[::1]:2379").target == "[::1]:2379"
    for bad in ("ftp://a:1", "http://a:x", "http://a:1/path", "http://u:p@a:1", "http://:1"):
        with pytest.raises(ConfigsvcError):
            parse_endpoint(bad)


def test_plain_endpoints_share_one_channel_secure_ones_get_one_each(pki: Pki) -> None:
    assert EtcdConnection.create(["http://127.0.0.1:2379"]).targets() == ["127.0.0.1:2379"]
    plain = EtcdConnection.create(["http://10.0.0.1:1", "http://10.0.0.2:2", "10.0.0.3:3"])
    assert plain.targets() == ["ipv4:10.0.0.1:1,10.0.0.2:2,10.0.0.3:3"]
    assert plain.tls is None
    secure = EtcdConnection.create(
        ["https://etcd-0.etcd:2379", "https://etcd-1.etcd:2379"], ca=pki.ca.cert_path
    )
    assert secure.targets() == ["etcd-0.etcd:2379", "etcd-1.etcd:2379"]  # names, not IPs
    assert secure.tls is not None and secure.tls.root_certificates is not None
    # no scheme with TLS files given: https
    assert EtcdConnection.create(["etcd:2379"], ca=pki.ca.cert_path).tls is not None
    # an https URL is secure even with no file given: the system's roots
    assert EtcdConnection.create(["https://etcd:2379"]).tls is not None
    with pytest.raises(ConfigsvcError, match="no etcd endpoint"):
        EtcdConnection.create([])


def test_credentials_stay_out_of_reprs(pki: Pki) -> None:
    connection = EtcdConnection.create(
        ["https://etcd:2379"],
        ca=pki.ca.cert_path,
        cert=pki.client.cert,
        key=pki.client.key,
        user="svc",
        password="hunter2-password",
    )
    text = repr(connection)
    assert "hunter2-password" not in text
    assert "PRIVATE KEY" not in text
    assert "svc" in text


def test_sdk_trust_settings_resolve(pki: Pki) -> None:
    ca = str(pki.ca.cert_path)
    assert resolve_tls(None, None, {}) == TlsOptions()
    assert resolve_tls(None, None, {"CONFIGSVC_CA": ca}) == TlsOptions(ca=Path(ca))
    assert resolve_tls(None, False, {"CONFIGSVC_CA": ca}) == TlsOptions(verify=False)
    context = ssl.create_default_context()
    assert resolve_tls(None, context, {"CONFIGSVC_CA": ca}).verify is context
    with pytest.raises(ValueError, match="not both"):
        resolve_tls(ca, False, {})
    with pytest.raises(ValueError, match="not both"):
        resolve_tls(ca, context, {})


async def test_sdk_shares_one_client_per_loop_and_tls_setting(pki: Pki) -> None:
    by_ca = TlsOptions(ca=pki.ca.cert_path)
    same_ca = TlsOptions(ca=pki.ca.directory / ".." / "ca" / pki.ca.cert_path.name)
    default = TlsOptions()
    first, second, third = acquire_http(by_ca), acquire_http(same_ca), acquire_http(default)
    try:
        assert first is second
        assert first is not third
        assert ssl_context(by_ca) is ssl_context(same_ca)
        assert ssl_context(by_ca) is not ssl_context(default)
    finally:
        for client in (first, second, third):
            await release_http(client)
    assert first.is_closed and third.is_closed
    await asyncio.sleep(0)


def test_cli_ca_resolves_from_flag_then_variable(tmp_path: Path) -> None:
    env = {"CONFIGSVC_CA": "/etc/ca.pem", "CONFIGSVC_DATA_DIR": str(tmp_path)}
    assert resolve(GlobalFlags(), env).ca == Path("/etc/ca.pem")
    assert resolve(GlobalFlags(ca=Path("mine.pem")), env).ca == Path("mine.pem")
    assert resolve(GlobalFlags(), {"CONFIGSVC_DATA_DIR": str(tmp_path)}).ca is None
    later = GlobalFlags(url="https://x").over(GlobalFlags(ca=Path("early.pem")))
    assert later.ca == Path("early.pem")
