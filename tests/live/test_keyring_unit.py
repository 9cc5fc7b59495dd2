"""LiveKeyring: hashes, states, validity windows, scopes, and the FastAPI dependency."""

# No `from __future__ import annotations`: FastAPI resolves the routes' annotations at runtime.

from datetime import UTC, datetime, timedelta
from typing import Annotated

import httpx
import pytest
from configsvc_client.live import KeyInfo, LiveKeyring, hash_key
from configsvc_schemas import AuthKeys, KeyState
from fastapi import Depends, FastAPI

from tests.live.doubles import Settable, keys

NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)


def entry(key_id: str, secret: str, **fields: object) -> dict[str, object]:
    return {"id": key_id, "sha256": hash_key(secret), "scopes": ["chat"], **fields}


def test_hash_key_matches_sha256_hex() -> None:
    assert hash_key("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_verify_states_and_scopes() -> None:
    live = Settable(
        keys(
            entry("a", "key-a", scopes=["chat", "embed"]),
            entry("b", "key-b", state="retiring"),
            entry("c", "key-c", state="revoked"),
        )
    )
    ring = LiveKeyring(live, now=lambda: NOW)
    info = ring.verify("key-a", "embed")
    assert info == KeyInfo("a", ("chat", "embed"), KeyState.ACTIVE, None, None)
    assert not info.retiring
    retiring = ring.verify("key-b")
    assert retiring is not None and retiring.retiring
    assert ring.verify("key-c") is None
    assert ring.verify("key-b", "embed") is None
    assert ring.verify("wrong") is None
    assert ring.verify("") is None
    assert ring.verify(None) is None


def test_validity_window() -> None:
    ring = LiveKeyring(
        keys(
            entry("early", "k1", not_before=NOW + timedelta(seconds=1)),
            entry("late", "k2", expires_at=NOW),
            entry("ok", "k3", not_before=NOW, expires_at=NOW + timedelta(days=1)),
        ),
        now=lambda: NOW,
    )
    assert ring.verify("k1") is None
    assert ring.verify("k2") is None
    assert ring.verify("k3") is not None


def test_rotation_takes_effect_on_the_next_call() -> None:
    live: Settable[AuthKeys] = Settable()
    ring = LiveKeyring(live)
    assert ring.verify("old") is None  # no document yet: nothing passes
    live.value = keys(entry("v1", "old"))
    assert ring.verify("old") is not None
    live.value = keys(entry("v1", "old", state="retiring"), entry("v2", "new"))
    old, new = ring.verify("old"), ring.verify("new")
    assert old is not None and old.retiring
    assert new is not None and new.id == "v2"
    live.value = keys(entry("v1", "old", state="revoked"), entry("v2", "new"))
    assert ring.verify("old") is None
    assert ring.verify("new") is not None


def test_a_revoked_entry_does_not_hide_a_valid_one_with_the_same_hash() -> None:
    ring = LiveKeyring(keys(entry("x", "same", state="revoked"), entry("y", "same")))
    info = ring.verify("same")
    assert info is not None and info.id == "y"


@pytest.fixture
def live_keys() -> Settable[AuthKeys]:
    return Settable(keys(entry("a", "key-a"), entry("e", "key-e", scopes=["embed"])))


@pytest.fixture
def app(live_keys: Settable[AuthKeys]) -> FastAPI:
    ring = LiveKeyring(live_keys)
    app = FastAPI()

    @app.get("/chat")
    async def chat(caller: Annotated[KeyInfo, Depends(ring.dependency("chat"))]) -> dict[str, str]:
        return {"id": caller.id}

    @app.get("/any")
    async def any_scope(caller: Annotated[KeyInfo, Depends(ring.dependency())]) -> dict[str, str]:
        return {"id": caller.id}

    return app


async def test_dependency_answers_401_403_and_passes(
    app: FastAPI, live_keys: Settable[AuthKeys]
) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        response = await client.get("/chat")
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json() == {"detail": "missing API key"}

        response = await client.get("/chat", headers={"Authorization": "Basic a2V5LWE="})
        assert response.status_code == 401

        response = await client.get("/chat", headers={"Authorization": "Bearer nope"})
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")

        response = await client.get("/chat", headers={"Authorization": "Bearer key-e"})
        assert response.status_code == 403
        assert "chat" in response.json()["detail"]

        response = await client.get("/chat", headers={"Authorization": "Bearer key-a"})
        assert response.json() == {"id": "a"}
        response = await client.get("/any", headers={"Authorization": "Bearer key-e"})
        assert response.json() == {"id": "e"}

        live_keys.value = keys(entry("a", "key-a", state="revoked"))
        response = await client.get("/chat", headers={"Authorization": "Bearer key-a"})
        assert response.status_code == 401
        assert "key-a" not in response.text


def test_dependency_is_documented_in_openapi(app: FastAPI) -> None:
    schemes = app.openapi()["components"]["securitySchemes"]
    assert schemes == {"api_key": {"type": "http", "scheme": "bearer"}}
