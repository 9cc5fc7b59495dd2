"""etcd over TLS with client certificates (`--client-cert-auth`): the service works through
it, refuses what it cannot trust, never speaks plain text to an `https://` URL, and checks
each member's certificate against the name it was given for that member."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support import ADMIN_TOKEN, STORE_TIMEOUT, SseReader, start_service
from tls.tlstools import Pki, tls_etcd

from configsvc.embedded.process import EtcdProcess
from configsvc.errors import ConfigsvcError, StoreUnavailable
from configsvc.store.etcd_client import EtcdKV, put_op
from configsvc.store.etcd_connection import EtcdConnection

LIMITS = {"kind": "RateLimits", "spec": {"limits": {"chat": {"requests_per_second": 5}}}}


def kv_for(pki: Pki, urls: list[str], **files: Path | None) -> EtcdKV:
    given = {"ca": pki.ca.cert_path, "cert": pki.client.cert, "key": pki.client.key, **files}
    return EtcdKV(EtcdConnection.create(urls, **given), timeout=STORE_TIMEOUT)


async def revision_or_reason(kv: EtcdKV) -> int | str:
    try:
        return await kv.current_revision()
    except StoreUnavailable as exc:
        return exc.message
    finally:
        await kv.close()


def test_the_service_over_an_etcd_that_asks_for_client_certificates(
    pki: Pki, secure_etcd: EtcdProcess
) -> None:
    running = start_service(
        secure_etcd,
        etcd_ca=pki.ca.cert_path,
        etcd_cert=pki.client.cert,
        etcd_key=pki.client.key,
    )
    try:
        with running.client() as api:
            reader = SseReader(running.url, ADMIN_TOKEN, ["prod"])
            try:
                assert reader.next().event == "snapshot"
                assert api.put("/v1/configs/prod/limits", json=LIMITS).status_code == 201
                event = reader.next()  # through the store's watch, over TLS
                assert event is not None and event.event == "put"
                assert event.data["name"] == "limits"
            finally:
                reader.close()
            assert api.get("/v1/configs/prod/limits").json()["version"] == 1
            assert api.get("/readyz").status_code == 200
    finally:
        running.stop()


@pytest.mark.parametrize(
    ("files", "reason"),
    [
        ({"cert": None, "key": None}, "TLS handshake failed"),  # no client certificate
        ({"ca": "other"}, "CERTIFICATE_VERIFY_FAILED"),  # etcd's CA is not trusted
    ],
)
async def test_what_etcd_or_the_service_cannot_trust_is_refused(
    pki: Pki, secure_etcd: EtcdProcess, files: dict[str, object], reason: str
) -> None:
    given = {k: (pki.other_ca.cert_path if v == "other" else v) for k, v in files.items()}
    outcome = await revision_or_reason(kv_for(pki, [secure_etcd.client_url], **given))  # type: ignore[arg-type]
    assert isinstance(outcome, str) and reason in outcome, outcome


async def test_https_is_never_dialled_in_plain_text(
    pki: Pki, etcd: EtcdProcess, secure_etcd: EtcdProcess
) -> None:
    """An `https://` URL to an etcd that speaks plain text fails the handshake; the same
    etcd works as `http://`, and a plain-text URL to the TLS port gets nothing either."""
    plain_as_https = etcd.client_url.replace("http://", "https://")
    outcome = await revision_or_reason(kv_for(pki, [plain_as_https], cert=None, key=None))
    assert isinstance(outcome, str) and "TLS handshake failed" in outcome, outcome
    assert isinstance(await revision_or_reason(EtcdKV([etcd.client_url], timeout=1)), int)
    tls_as_http = secure_etcd.client_url.replace("https://", "http://")
    assert isinstance(await revision_or_reason(EtcdKV([tls_as_http], timeout=1)), str)


async def test_without_a_ca_file_the_system_roots_decide(
    pki: Pki, secure_etcd: EtcdProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No --etcd-ca: the system's trusted roots (here made to hold the tests' CA through
    SSL_CERT_FILE, as OpenSSL reads it)."""
    untrusted = await revision_or_reason(kv_for(pki, [secure_etcd.client_url], ca=None))
    assert isinstance(untrusted, str) and "CERTIFICATE_VERIFY_FAILED" in untrusted
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca.cert_path))
    assert isinstance(await revision_or_reason(kv_for(pki, [secure_etcd.client_url], ca=None)), int)


@pytest.fixture
def wrong_name_etcd(pki: Pki, tmp_path: Path) -> Iterator[EtcdProcess]:
    """etcd whose certificate is for `elsewhere.invalid`, not for the address it is given."""
    proc = tls_etcd(pki, tmp_path / "etcd-wrong-name", server=pki.wrong_name)
    yield proc
    proc.stop()


async def test_each_member_is_checked_against_its_own_name(
    pki: Pki, secure_etcd: EtcdProcess, wrong_name_etcd: EtcdProcess
) -> None:
    """Several https:// endpoints: one channel each, so each member's certificate is checked
    against the name given for it. A member whose certificate does not name it is refused,
    and the service moves on to the next member."""
    alone = await revision_or_reason(kv_for(pki, [wrong_name_etcd.client_url]))
    assert isinstance(alone, str) and "not for the host name given" in alone, alone
    kv = kv_for(pki, [wrong_name_etcd.client_url, secure_etcd.client_url])
    try:
        assert len(kv.channels.clients) == 2
        # a read is tried on the next member at once
        assert (await kv.current_revision()) >= 1
        # a write is not sent twice: it goes to the member in use, now the good one
        written = await kv.txn([], [put_op(b"/configsvc/probe", b"1")])
        assert written.succeeded
        async for change in kv.watch(b"/configsvc/", written.header.revision):
            assert change.key == b"/configsvc/probe"
            break
    finally:
        await kv.close()


def test_settings_that_do_not_fit_are_refused(pki: Pki, etcd: EtcdProcess, tmp_path: Path) -> None:
    with pytest.raises(ConfigsvcError, match="write them as https://"):
        EtcdConnection.create([etcd.client_url], ca=pki.ca.cert_path)
    with pytest.raises(ConfigsvcError, match="mix http:// and https://"):
        EtcdConnection.create(["http://a:1", "https://b:2"])
    with pytest.raises(ConfigsvcError, match="cannot read --etcd-ca"):
        EtcdConnection.create(["https://a:1"], ca=pki.ca.directory / "missing.pem")
    not_pem = tmp_path / "ca.der"
    not_pem.write_bytes(b"\x30\x82")
    with pytest.raises(ConfigsvcError, match="not PEM"):
        EtcdConnection.create(["https://a:1"], ca=not_pem)
    with pytest.raises(ConfigsvcError, match="go together"):
        EtcdConnection.create(["https://a:1"], cert=pki.client.cert)
