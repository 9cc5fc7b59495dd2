"""A candidate's secrets: sealed at rest like every spec, masked for instances whose token
may not read them, restored from the current version when sent as `****`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from support import RunningService

from configsvc.crypto.keyring import ensure_keyring
from configsvc.embedded.process import EtcdProcess
from tests.rollouts.helpers import Stream, act, expected_chosen, identity_headers, start_rollout

KEY = "prod/models"
BASE_SECRET = "sk-BASE-rollout-5e1d"
CANDIDATE_SECRET = "sk-CANDIDATE-rollout-77aa"
IDENTITIES = {f"pod-{n}": {} for n in range(20)}


def models(api_key: str, read: float = 600) -> dict[str, Any]:
    endpoint = {"base_url": "http://127.0.0.1:1/v1", "model": "m", "api_key": api_key}
    endpoint["timeout"] = {"read": read}
    return {"default": "a", "endpoints": {"a": endpoint, "b": {**endpoint, "api_key": "****"}}}


def api_keys(document: dict[str, Any]) -> list[str]:
    return [e["api_key"] for e in document["spec"]["endpoints"].values()]


def etcd_bytes(etcd: EtcdProcess) -> bytes:
    return b"".join(path.read_bytes() for path in etcd.data_dir.rglob("*") if path.is_file())


def test_candidate_secrets_are_sealed_masked_and_restored(
    service_factory: Callable[..., RunningService], etcd: EtcdProcess, tmp_path: Path
) -> None:
    key_file = tmp_path / "secret.key"
    ensure_keyring(key_file)
    service = service_factory(keepalive=0.2, secret_key_file=key_file)
    with service.client() as api:
        body = {"kind": "ModelEndpoints", "spec": models(BASE_SECRET)}
        body["spec"]["endpoints"]["b"]["api_key"] = BASE_SECRET
        assert api.put(f"/v1/configs/{KEY}", json=body).status_code == 201
        reader = api.post("/v1/tokens", json={"name": "r", "role": "reader", "namespaces": ["*"]})
        reader_token = reader.json()["token"]
        rollout = start_rollout(
            api,
            KEY,
            kind="ModelEndpoints",
            spec=models(CANDIDATE_SECRET, read=30),  # b's key sent as ****: kept
            steps=[50, 100],
            step_seconds=3600,
        )
        chosen = sorted(expected_chosen(rollout["id"], 50, IDENTITIES))[0]
        headers = identity_headers(chosen)
        with service.client(reader_token) as as_reader:
            item = as_reader.get("/v1/configs/prod", headers=headers).json()["items"][0]
            assert item["version"] == rollout["version"] and api_keys(item) == ["****", "****"]
        item = api.get("/v1/configs/prod", headers=headers).json()["items"][0]
        assert api_keys(item) == [CANDIDATE_SECRET, BASE_SECRET]
        for token, keys in ((reader_token, ["****", "****"]), (service.admin_token, None)):
            stream = Stream(service.url, token, "prod", headers)
            try:
                event = stream.next()
                assert event is not None and event.event == "snapshot"
                (document,) = event.data["items"]
                assert api_keys(document) == (keys or [CANDIDATE_SECRET, BASE_SECRET])
            finally:
                stream.close()
        act(api, "abort", KEY)
        # a write after the abort restores **** from the current version, not the candidate
        changed = {"kind": "ModelEndpoints", "spec": models("****", read=60)}
        assert api.put(f"/v1/configs/{KEY}", json=changed).status_code == 200
        assert api_keys(api.get(f"/v1/configs/{KEY}").json()) == [BASE_SECRET, BASE_SECRET]
    stored = etcd_bytes(etcd)
    assert BASE_SECRET.encode() not in stored and CANDIDATE_SECRET.encode() not in stored
    assert httpx.get(f"{service.url}/healthz").status_code == 200
