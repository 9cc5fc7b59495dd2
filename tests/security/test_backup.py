"""Backup and restore over the API and the CLI: everything comes back exactly (versions,
history, kinds, tokens, audit), secrets stay sealed, a backup taken while writes flow is
consistent, and a restore refuses a non-empty store or a missing key."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import RunningService, start_service

from configsvc.crypto.keyring import ensure_keyring
from configsvc.embedded.binary import find_etcd_binary
from configsvc.embedded.process import EtcdProcess
from configsvc.store.etcd_client import EtcdKV, prefix_end
from configsvc.store.keys import KeyLayout
from tests.cli.clitools import CONFIGSVC

MARKER = "sk-MARKER-backup-0c41"
KIND_SCHEMA = {
    "type": "object",
    "properties": {"servers": {"type": "array", "items": {"type": "object", "properties": {
        "url": {"type": "string"}, "token": {"type": "string", "x-configsvc-secret": True}}}}},
}  # fmt: skip


def models(key: str, read: float = 60) -> dict[str, Any]:
    endpoint = {"base_url": "http://127.0.0.1:1/v1", "model": "m", "api_key": key,
                "timeout": {"read": read}}  # fmt: skip
    return {"kind": "ModelEndpoints", "spec": {"default": "a", "endpoints": {"a": endpoint}}}


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.key"
    ensure_keyring(path)
    return path


@pytest.fixture
def second_etcd(tmp_path: Path) -> Iterator[EtcdProcess]:
    proc = EtcdProcess(
        binary=find_etcd_binary(), data_dir=tmp_path / "etcd-b", fast_raft=True,
        log_path=tmp_path / "etcd-b.log",
    )  # fmt: skip
    proc.start()
    yield proc
    proc.stop()


def fill(api: httpx.Client) -> str:
    """Documents with versions, a rollback, a delete, a user kind and a token."""
    for read in (60, 120, 240):
        assert api.put("/v1/configs/prod/models", json=models(MARKER, read)).is_success
    assert api.post("/v1/configs/prod/models/rollback", json={"to_version": 1}).is_success
    assert api.put("/v1/configs/prod/gone", json=models(MARKER)).is_success
    assert api.delete("/v1/configs/prod/gone").is_success
    kind = api.put("/v1/schemas/McpServers", json={"schema": KIND_SCHEMA, "message": "v1"})
    assert kind.status_code == 201, kind.text
    servers = {"servers": [{"url": "http://mcp", "token": MARKER + "-mcp"}]}
    assert api.put("/v1/configs/team/mcp", json={"kind": "McpServers", "spec": servers}).is_success
    made = api.post("/v1/tokens", json={"name": "ci", "role": "reader", "namespaces": ["*"]})
    token: str = made.json()["token"]
    return token


def state(api: httpx.Client) -> dict[str, Any]:
    """What a client sees of the store: documents, every version, history, kinds, tokens."""
    seen: dict[str, Any] = {}
    for ns in ("prod", "team"):
        for doc in api.get(f"/v1/configs/{ns}").json()["items"]:
            address = f"{ns}/{doc['name']}"
            seen[address] = {k: doc[k] for k in ("spec", "version", "kind", "message")}
        for name in ("models", "gone", "mcp"):
            history = api.get(f"/v1/configs/{ns}/{name}/history")
            if history.status_code == 404:
                continue
            rows = history.json()["items"]
            seen[f"{ns}/{name} history"] = [
                {k: r[k] for k in ("version", "action", "message", "updated_by", "kind")}
                for r in rows
            ]
            for row in rows:
                if row["action"] != "delete":
                    old = api.get(f"/v1/configs/{ns}/{name}/versions/{row['version']}").json()
                    seen[f"{ns}/{name} v{row['version']}"] = old["spec"]
    kind = api.get("/v1/schemas/McpServers").json()
    seen["kind"] = {k: kind[k] for k in ("version", "schema", "builtin")}
    seen["tokens"] = sorted(t["name"] for t in api.get("/v1/tokens").json()["items"])
    return seen


def test_backup_then_restore_into_a_fresh_store(
    service_factory: Callable[..., RunningService],
    second_etcd: EtcdProcess,
    key_file: Path,
    tmp_path: Path,
) -> None:
    source = service_factory(secret_key_file=key_file)
    with source.client() as api:
        ci_token = fill(api)
        before = state(api)
        answer = api.get("/v1/admin/backup")
        assert answer.status_code == 200
        audit_before = [r["action"] for r in api.get("/v1/audit").json()["items"]]
    raw = answer.content
    assert MARKER.encode() not in raw
    lines = raw.splitlines()
    header = json.loads(lines[0])
    assert header["format"] == "configsvc-backup" and header["keys"] == len(lines) - 1
    assert header["sealed_with"]

    target = start_service(second_etcd, secret_key_file=key_file)
    try:
        with target.client() as api:
            restored = api.post(
                "/v1/admin/restore",
                content=raw,
                headers={"Content-Type": "application/x-ndjson"},
            )
            assert restored.status_code == 200, restored.text
            assert restored.json()["documents"] == 2  # prod/models, team/mcp
            assert state(api) == before
            actions = [r["action"] for r in api.get("/v1/audit").json()["items"]]
            assert actions[: len(audit_before)] == audit_before and actions[-1] == "restore"
            again = api.post(
                "/v1/admin/restore", content=raw, headers={"Content-Type": "application/x-ndjson"}
            )
            assert again.status_code == 409 and "not empty" in again.json()["error"]["message"]
        with target.client(ci_token) as ci:
            assert ci.get("/v1/whoami").json()["name"] == "ci"  # the token hash came back
    finally:
        target.stop()


def test_a_backup_needs_its_key_and_a_restore_can_replace(
    service_factory: Callable[..., RunningService],
    second_etcd: EtcdProcess,
    key_file: Path,
    tmp_path: Path,
) -> None:
    source = service_factory(secret_key_file=key_file)
    with source.client() as api:
        fill(api)
        raw = api.get("/v1/admin/backup").content
    other_key = tmp_path / "other.key"
    ensure_keyring(other_key)
    keyless = start_service(second_etcd, secret_key_file=other_key)
    try:
        with keyless.client() as api:
            refused = api.post(
                "/v1/admin/restore", content=raw, headers={"Content-Type": "application/x-ndjson"}
            )
            assert refused.status_code == 409
            assert "does not hold" in refused.json()["error"]["message"]
            assert api.get("/v1/configs/prod").json()["items"] == []  # nothing restored
    finally:
        keyless.stop()
    # the source itself: a forced restore replaces what it holds with the backup
    with source.client() as api:
        api.put("/v1/configs/prod/models", json=models(MARKER, 999))
        api.put("/v1/configs/prod/extra", json=models(MARKER))
        forced = api.post(
            "/v1/admin/restore",
            params={"force": "true"},
            content=raw,
            headers={"Content-Type": "application/x-ndjson"},
        )
        assert forced.status_code == 200, forced.text
        names = [d["name"] for d in api.get("/v1/configs/prod").json()["items"]]
        assert names == ["models"]
        assert api.get("/v1/configs/prod/models").json()["version"] == 4


async def stored_meta(etcd: EtcdProcess) -> dict[bytes, bytes]:
    """The store's own metadata keys in etcd (layout marker, secret-key checks)."""
    kv = EtcdKV([etcd.client_url], timeout=5)
    try:
        root = f"{KeyLayout().prefix}meta/".encode()
        return {item.key: item.value for item in (await kv.range(root, prefix_end(root))).kvs}
    finally:
        await kv.close()


def test_a_cut_off_or_damaged_backup_restores_nothing(
    service_factory: Callable[..., RunningService],
    second_etcd: EtcdProcess,
    key_file: Path,
) -> None:
    source = service_factory(secret_key_file=key_file)
    with source.client() as api:
        fill(api)
        raw = api.get("/v1/admin/backup").content
    lines = raw.splitlines(keepends=True)
    cut_off = b"".join(lines[:-3])
    damaged = b"".join([*lines[:6], b'{"k": "hist/prod/x/000000000001", "v": "%%"}\n', *lines[6:]])
    target = start_service(second_etcd, secret_key_file=key_file)
    try:
        meta = asyncio.run(stored_meta(second_etcd))
        assert meta  # the layout marker and the secret-key check
        with target.client() as api:
            for body, expected in ((cut_off, "incomplete"), (damaged, "not a key and a base64")):
                refused = api.post(
                    "/v1/admin/restore", content=body,
                    headers={"Content-Type": "application/x-ndjson"},
                )  # fmt: skip
                assert refused.status_code == 400, refused.text
                assert expected in refused.json()["error"]["message"]
                assert api.get("/v1/configs/prod").json()["items"] == []
                assert api.get("/v1/configs/prod/models/history").status_code == 404
                assert api.get("/v1/schemas/McpServers").status_code == 404
                assert "restore" not in [r["action"] for r in api.get("/v1/audit").json()["items"]]
                assert asyncio.run(stored_meta(second_etcd)) == meta
            # still empty: the whole backup goes in
            whole = api.post(
                "/v1/admin/restore", content=raw, headers={"Content-Type": "application/x-ndjson"}
            )
            assert whole.status_code == 200, whole.text
    finally:
        target.stop()


def test_a_backup_taken_while_writes_flow_is_one_revision(
    service: RunningService, api: httpx.Client
) -> None:
    stop = threading.Event()

    def write() -> None:
        with service.client() as writer:
            read = 1
            while not stop.is_set():
                read += 1
                writer.put("/v1/configs/prod/models", json=models(MARKER, read))
                writer.put("/v1/configs/prod/other", json=models(MARKER, read))

    thread = threading.Thread(target=write)
    thread.start()
    try:
        backups = [api.get("/v1/admin/backup").content for _ in range(5)]
    finally:
        stop.set()
        thread.join()
    for raw in backups:
        keys = {}
        for line in raw.splitlines()[1:]:
            entry = json.loads(line)
            keys[entry["k"]] = entry["v"]
        for name in ("models", "other"):
            counter = keys.get(f"ver/prod/{name}")
            if counter is None:
                continue
            version = int(base64.b64decode(counter))
            # the current version's spec and record are in the same backup: one revision
            assert f"hist/prod/{name}/{version:012d}" in keys
            assert f"hspec/prod/{name}/{version:012d}" in keys
            assert f"hist/prod/{name}/{version + 1:012d}" not in keys


def test_the_cli_writes_a_private_file_and_restores_it(
    service: RunningService, second_etcd: EtcdProcess, tmp_path: Path
) -> None:
    with service.client() as api:
        api.put("/v1/configs/prod/models", json=models(MARKER))
    env = {"PATH": "/usr/bin:/bin", "CONFIGSVC_URL": service.url,
           "CONFIGSVC_TOKEN": service.admin_token, "HOME": str(tmp_path)}  # fmt: skip
    file = tmp_path / "store.backup"
    done = subprocess.run([CONFIGSVC, "backup", str(file)], env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "keys at store revision" in done.stdout
    assert file.stat().st_mode & 0o777 == 0o600
    target = start_service(second_etcd)
    try:
        env["CONFIGSVC_URL"] = target.url
        done = subprocess.run([CONFIGSVC, "restore", str(file)], env=env, capture_output=True,
                              text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "restored" in done.stdout and "(1 documents)" in done.stdout
        bad = tmp_path / "not-a-backup"
        bad.write_text("hello\n")
        done = subprocess.run([CONFIGSVC, "restore", str(bad)], env=env, capture_output=True,
                              text=True, timeout=60)  # fmt: skip
        assert done.returncode == 1 and "is not a configsvc backup" in done.stderr
        cut = tmp_path / "cut.backup"
        cut.write_bytes(b"".join(file.read_bytes().splitlines(keepends=True)[:-1]))
        done = subprocess.run([CONFIGSVC, "restore", str(cut), "--force", "--yes"], env=env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 1 and "is incomplete" in done.stderr, done.stderr
    finally:
        target.stop()
