"""Secret fields sealed at rest: never in clear in etcd's files, opened for readers allowed
to see them, re-sealed by a key rotation; a missing or wrong key stops the start."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import RunningService, SseReader

from configsvc.app import create_app
from configsvc.crypto.keyring import (
    Keyring,
    KeyringError,
    ensure_keyring,
    load_keyring,
    write_keyring,
)
from configsvc.crypto.sealing import Sealer
from configsvc.crypto.store_keys import check_store_keys
from configsvc.embedded.process import EtcdProcess
from configsvc.settings import ServiceSettings
from configsvc.store.etcd_client import EtcdKV, prefix_end
from configsvc.store.keys import KeyLayout

MARKER = "sk-MARKER-at-rest-5e1d"
ADMIN = "admin-token-for-the-key-checks"


def models(key: str) -> dict[str, Any]:
    endpoint = {"base_url": "http://127.0.0.1:1/v1", "model": "m", "api_key": key}
    return {"kind": "ModelEndpoints", "spec": {"default": "a", "endpoints": {"a": endpoint}}}


def etcd_bytes(etcd: EtcdProcess) -> bytes:
    """Every byte etcd has written to its data dir (database and write-ahead log)."""
    return b"".join(path.read_bytes() for path in etcd.data_dir.rglob("*") if path.is_file())


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.key"
    ensure_keyring(path)
    return path


@pytest.fixture
def sealed_service(
    service_factory: Callable[..., RunningService], key_file: Path
) -> Iterator[RunningService]:
    yield service_factory(keepalive=0.2, secret_key_file=key_file)


def test_secrets_are_sealed_in_etcd_and_open_for_readers(
    sealed_service: RunningService, etcd: EtcdProcess
) -> None:
    with sealed_service.client() as api:
        reader = SseReader(sealed_service.url, sealed_service.admin_token, ["prod"])
        try:
            assert reader.next() is not None  # the snapshot
            assert api.put("/v1/configs/prod/models", json=models(MARKER)).status_code == 201
            assert api.put("/v1/configs/prod/models", json=models(MARKER + "-2")).is_success
            event = reader.next()
            assert event is not None and event.data["spec"]["endpoints"]["a"]["api_key"] == MARKER
        finally:
            reader.close()
        got = api.get("/v1/configs/prod/models").json()
        assert got["spec"]["endpoints"]["a"]["api_key"] == MARKER + "-2"
        old = api.get("/v1/configs/prod/models/versions/1").json()
        assert old["spec"]["endpoints"]["a"]["api_key"] == MARKER
        listing = api.get("/v1/configs/prod").json()["items"]
        assert listing[0]["spec"]["endpoints"]["a"]["api_key"] == MARKER + "-2"
    stored = etcd_bytes(etcd)
    assert MARKER.encode() not in stored
    assert b"enc:v1:" in stored


def test_a_rotation_re_seals_everything_and_the_old_key_can_go(
    sealed_service: RunningService,
    service_factory: Callable[..., RunningService],
    key_file: Path,
    etcd: EtcdProcess,
) -> None:
    with sealed_service.client() as api:
        for version in range(3):
            api.put("/v1/configs/prod/models", json=models(f"{MARKER}-{version}"))
        first = load_keyring(key_file)
        rotated = first.with_new_active()
        write_keyring(rotated, key_file)
        answer = api.post("/v1/admin/secrets/rotate")
        assert answer.status_code == 200, answer.text
        result = answer.json()
        assert result["active"] == rotated.active
        assert result["rewritten"] == 3 and result["keys_in_use"] == [rotated.active]
    # the old key is not needed any more: a service with only the new one reads everything
    write_keyring(Keyring(rotated.active, {rotated.active: rotated.keys[rotated.active]}), key_file)
    fresh = service_factory(secret_key_file=key_file)
    with fresh.client() as api:
        for version in range(3):
            old = api.get(f"/v1/configs/prod/models/versions/{version + 1}").json()
            assert old["spec"]["endpoints"]["a"]["api_key"] == f"{MARKER}-{version}"
    assert MARKER.encode() not in etcd_bytes(etcd)


async def test_a_missing_or_wrong_key_stops_the_start(etcd: EtcdProcess, tmp_path: Path) -> None:
    kv = EtcdKV([etcd.client_url], timeout=5)
    layout = KeyLayout()
    try:
        good = ensure_keyring(tmp_path / "good.key")
        await check_store_keys(kv, layout, Sealer(good))
        with pytest.raises(KeyringError, match="CONFIGSVC_SECRET_KEY_FILE"):
            await check_store_keys(kv, layout, None)
        other = ensure_keyring(tmp_path / "other.key")
        with pytest.raises(KeyringError, match="does not hold"):
            await check_store_keys(kv, layout, Sealer(other))
        impostor = Keyring(good.active, {good.active: other.keys[other.active]})
        with pytest.raises(KeyringError, match="is not the key"):
            await check_store_keys(kv, layout, Sealer(impostor))
    finally:
        await kv.close()


async def test_a_service_over_a_sealed_store_without_the_key_does_not_start(
    etcd: EtcdProcess, key_file: Path
) -> None:
    sealed = ServiceSettings(etcd=etcd.client_url, admin_token=ADMIN, secret_key_file=key_file)
    app = create_app(sealed, [etcd.client_url])
    async with app.router.lifespan_context(app):
        pass  # records the key that seals this store
    keyless = create_app(
        ServiceSettings(etcd=etcd.client_url, admin_token=ADMIN), [etcd.client_url]
    )
    with pytest.raises(KeyringError, match="CONFIGSVC_SECRET_KEY_FILE"):
        async with keyless.router.lifespan_context(keyless):
            pass


def test_secrets_stored_in_clear_are_sealed_once_a_key_is_given(
    service_factory: Callable[..., RunningService], key_file: Path, etcd: EtcdProcess
) -> None:
    clear = service_factory()
    with clear.client() as api:
        api.put("/v1/configs/prod/models", json=models(MARKER))
    assert MARKER.encode() in _spec_values(etcd)
    clear.stop()
    sealed = service_factory(secret_key_file=key_file)
    with sealed.client() as api:
        for _ in range(100):  # sealed in the background, right after the start
            if MARKER.encode() not in _spec_values(etcd):
                break
            time.sleep(0.05)
        assert MARKER.encode() not in _spec_values(etcd)
        got = api.get("/v1/configs/prod/models").json()
        assert got["spec"]["endpoints"]["a"]["api_key"] == MARKER


def _spec_values(etcd: EtcdProcess) -> bytes:
    """The current values of the stored specs (not etcd's older revisions or its log)."""

    async def read() -> bytes:
        kv = EtcdKV([etcd.client_url], timeout=5)
        try:
            root = KeyLayout().history_spec_all()
            response = await kv.range(root, prefix_end(root))
            return b"".join(item.value for item in response.kvs)
        finally:
            await kv.close()

    return asyncio.run(read())
