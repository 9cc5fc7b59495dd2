"""SessionManager against a real etcd, with an injected clock; SessionStreams on its own."""

from __future__ import annotations

import asyncio

import pytest
from support import ADMIN_TOKEN

from configsvc.auth import Authenticator, Role, hash_secret, new_token
from configsvc.errors import Unauthorized
from configsvc.sessions import CsrfFailed, SessionManager, SessionOptions, SessionStreams
from configsvc.store.etcd_store import EtcdConfigStore
from configsvc.store.records import TokenRecord, utc_now
from configsvc.store.sessions import SessionStore
from configsvc.store.watcher import FamilyChange

TTL = 3600.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def manager(store: EtcdConfigStore, clock: Clock) -> SessionManager:
    auth = Authenticator(store, ADMIN_TOKEN)
    return SessionManager(
        SessionStore(store.kv, store.layout), auth, SessionOptions(ttl=TTL), clock
    )


async def add_token(store: EtcdConfigStore, name: str, role: str = "writer") -> str:
    token = new_token(name)
    record = TokenRecord(name, role, ("prod",), False, hash_secret(token), utc_now(), "admin")
    await store.create_token(record)
    return token


async def test_a_session_lasts_its_ttl_then_is_refused(store: EtcdConfigStore) -> None:
    clock = Clock()
    sessions = manager(store, clock)
    new = await sessions.sign_in(await add_token(store, "alice"))
    clock.now += TTL - 1
    session = await sessions.verify(new.session_id)
    assert session.principal.name == "alice" and session.principal.role is Role.WRITER
    assert session.csrf_token == new.session.csrf_token
    clock.now += 1
    with pytest.raises(Unauthorized):
        await sessions.verify(new.session_id)


async def test_signing_in_sweeps_expired_sessions(store: EtcdConfigStore) -> None:
    clock = Clock()
    sessions = manager(store, clock)
    for _ in range(3):
        await sessions.sign_in(ADMIN_TOKEN)
    root = store.layout.sessions_root()
    assert len((await store.kv.range(root, root[:-1] + b"0")).kvs) == 3
    clock.now += TTL
    fresh = await sessions.sign_in(ADMIN_TOKEN)
    kept = (await store.kv.range(root, root[:-1] + b"0")).kvs
    assert [kv.key for kv in kept] == [store.layout.session(fresh.session.key)]


async def test_a_revoked_or_replaced_token_ends_its_sessions(store: EtcdConfigStore) -> None:
    sessions = manager(store, Clock())
    new = await sessions.sign_in(await add_token(store, "bob"))
    await store.delete_token("bob", by="admin")
    with pytest.raises(Unauthorized, match="revoked"):
        await sessions.verify(new.session_id)
    await add_token(store, "bob")  # the same name, another secret
    with pytest.raises(Unauthorized):
        await sessions.verify(new.session_id)


async def test_bad_tokens_and_ids_are_refused_and_nothing_is_stored(store: EtcdConfigStore) -> None:
    sessions = manager(store, Clock())
    for token in ("nope", "cst.ghost.abcdefghijklmnopqrstuvwxyz", ADMIN_TOKEN + "x"):
        with pytest.raises(Unauthorized):
            await sessions.sign_in(token)
    root = store.layout.sessions_root()
    assert (await store.kv.range(root, root[:-1] + b"0")).kvs == []
    for session_id in ("", "short", "x" * 43, "../" * 15):
        with pytest.raises(Unauthorized):
            await sessions.verify(session_id)


async def test_csrf_proof_and_sign_out(store: EtcdConfigStore) -> None:
    sessions = manager(store, Clock())
    new = await sessions.sign_in(ADMIN_TOKEN)
    session = await sessions.verify(new.session_id)
    session.require_csrf(new.session.csrf_token)
    for wrong in (None, "", new.session.csrf_token[:-1], new.session_id):
        with pytest.raises(CsrfFailed):
            session.require_csrf(wrong)
    other = await sessions.sign_in(ADMIN_TOKEN)
    assert other.session.csrf_token != new.session.csrf_token
    await sessions.sign_out(session)
    with pytest.raises(Unauthorized):
        await sessions.verify(new.session_id)
    assert (await sessions.verify(other.session_id)).principal.name == "admin"


async def test_session_streams_end_with_their_session() -> None:
    streams = SessionStreams()
    loop = asyncio.get_running_loop()
    ended: list[tuple[str, str]] = []

    def stream(key: str, name: str, expires_in: float = 60) -> asyncio.Future[str]:
        done: asyncio.Future[str] = loop.create_future()

        def end(reason: str) -> None:
            ended.append((name, reason))
            if not done.done():
                done.set_result(reason)

        streams.track(key, expires_in, done, end)
        return done

    a1, a2, b = stream("a", "a1"), stream("a", "a2"), stream("b", "b")
    assert len(streams) == 3
    streams.end("a", "signed-out")
    assert sorted(ended) == [("a1", "signed-out"), ("a2", "signed-out")]
    await asyncio.sleep(0)
    assert len(streams) == 1 and a1.done() and a2.done() and not b.done()
    b.set_result("gone")  # the client left first: nothing more happens to it
    await asyncio.sleep(0)
    assert len(streams) == 0
    streams.end("b", "signed-out")
    assert ("b", "signed-out") not in ended

    soon = stream("c", "c", expires_in=0)
    assert await asyncio.wait_for(soon, 5) == "expired"


async def test_a_deleted_session_record_ends_its_streams_here(store: EtcdConfigStore) -> None:
    sessions = manager(store, Clock())
    new = await sessions.sign_in(ADMIN_TOKEN)
    done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    sessions.follow_stream(new.session, done, done.set_result)
    sessions.on_session_change(FamilyChange("sess", "unrelated", None, 5))
    assert not done.done()
    sessions.on_session_change(FamilyChange("sess", new.session.key, b"{}", 6))
    assert not done.done(), "a put is no end"
    sessions.on_session_change(FamilyChange("sess", new.session.key, None, 7))
    assert done.result() == "signed-out"
