"""Console sessions: a token exchanged for a cookie, a CSRF proof for writes, and their end.

    browser ── POST /v1/session {"token"} ──▶ SessionManager.sign_in
            ◀── Set-Cookie: configsvc_session=<id>; HttpOnly; SameSite=Strict  + {"csrf_token"}

Guarantees:
- The token is checked once, at sign-in, and never kept: the session record holds the
  token's name and sha256 (like token records do), keyed by the sha256 of the session id.
- Every request made with the cookie reads the session record and the token record from
  the store, so an expired session, a signed-out one, or one whose token was revoked or
  replaced is refused (401) at once, on every instance.
- A write made with the cookie needs `X-CSRF-Token`: an HMAC of the session id, given to the
  page at sign-in and by `GET /v1/session`. Another site can make a browser send the cookie
  (not with SameSite=Strict, but defence in depth) but cannot read that value.
- Watch streams opened with a session end when the session does: at its expiry (a timer)
  and when its record is deleted anywhere (sign-out, seen through the store watch); a revoked
  token's streams end through `Fanout.close_streams_of`, like streams opened with a bearer.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from configsvc_schemas.wire import API_PREFIX

from configsvc.auth import Authenticator, Principal, hash_secret
from configsvc.errors import Forbidden, Unauthorized
from configsvc.settings import DEFAULT_SESSION_TTL_SECONDS
from configsvc.store.sessions import SessionRecord, SessionStore
from configsvc.store.watcher import FamilyChange

SESSION_PATH = f"{API_PREFIX}/session"
SESSION_COOKIE = "configsvc_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
"""Methods that change nothing: the only ones a cookie alone may make."""

SESSION_ID_BYTES = 32
SESSION_ID_RULE = re.compile(r"[A-Za-z0-9_-]{43}")
"""A session id as `secrets.token_urlsafe(SESSION_ID_BYTES)` makes it."""
CSRF_CONTEXT = b"configsvc console csrf v1"

Clock = Callable[[], float]
"""Unix seconds (`time.time`), injected so that tests can move time."""

ENDED = "the console session has ended (signed out, expired or unknown): sign in again"


class CsrfFailed(Forbidden):
    """403: a write made with the session cookie lacks the page's CSRF proof."""

    code = "csrf_failed"


@dataclass(frozen=True, slots=True)
class SessionOptions:
    ttl: float = DEFAULT_SESSION_TTL_SECONDS
    """Seconds from sign-in until the session is refused."""


@dataclass(frozen=True, slots=True)
class Session:
    """A live console session: whom it acts for, and the proof its page sends with writes."""

    key: str
    """The sha256 of the session id: its name in the store, never the id itself."""
    principal: Principal
    csrf_token: str
    expires_at: float

    def require_csrf(self, presented: str | None) -> None:
        """Raise `CsrfFailed` unless `presented` is this session's CSRF token."""
        if not presented or not hmac.compare_digest(presented.encode(), self.csrf_token.encode()):
            raise CsrfFailed(
                f"a write made with the console's session cookie needs the {CSRF_HEADER} header "
                "that the console was given at sign-in (GET /v1/session gives it again)"
            )


@dataclass(frozen=True, slots=True)
class NewSession:
    session_id: str
    """The cookie's value; given to the browser once and never stored."""
    session: Session


def session_key(session_id: str) -> str:
    """The store key of a session id; 401 for something that is no session id."""
    if not SESSION_ID_RULE.fullmatch(session_id):
        raise Unauthorized(ENDED)
    return hashlib.sha256(session_id.encode()).hexdigest()


def csrf_token(session_id: str) -> str:
    digest = hmac.new(session_id.encode(), CSRF_CONTEXT, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class SessionStreams:
    """The watch streams opened with each session of this process, ended with the session."""

    def __init__(self) -> None:
        self._ends: dict[str, dict[asyncio.Future[str], Callable[[str], None]]] = {}

    def track(
        self, key: str, expires_in: float, done: asyncio.Future[str], end: Callable[[str], None]
    ) -> None:
        """Call `end(reason)` when session `key` ends, unless `done` (the stream's own end)
        resolves first."""
        streams = self._ends.setdefault(key, {})
        streams[done] = end
        timer = asyncio.get_running_loop().call_later(max(0.0, expires_in), end, "expired")

        def forget(_done: asyncio.Future[str]) -> None:
            timer.cancel()
            group = self._ends.get(key)
            if group is not None:
                group.pop(done, None)
                if not group:
                    del self._ends[key]

        done.add_done_callback(forget)

    def end(self, key: str, reason: str) -> None:
        """End every stream of session `key` now."""
        for end in list(self._ends.get(key, {}).values()):
            end(reason)

    def __len__(self) -> int:
        return sum(len(group) for group in self._ends.values())


class SessionManager:
    """Signs browsers in and out, and turns a session cookie into a `Session`."""

    def __init__(
        self,
        store: SessionStore,
        auth: Authenticator,
        options: SessionOptions | None = None,
        clock: Clock = time.time,
    ) -> None:
        self._store = store
        self._auth = auth
        self.options = options or SessionOptions()
        self._clock = clock
        self.streams = SessionStreams()

    async def sign_in(self, token: str) -> NewSession:
        """A new session for `token` (401 when it is not valid). Sessions that have expired
        are swept from the store on the way, so that they never pile up."""
        principal = await self._auth.authenticate_token(token)
        now = self._clock()
        await self._store.delete_expired(now)
        session_id = secrets.token_urlsafe(SESSION_ID_BYTES)
        record = SessionRecord(principal.name, hash_secret(token), now, now + self.options.ttl)
        key = session_key(session_id)
        await self._store.create(key, record)
        return NewSession(
            session_id, Session(key, principal, csrf_token(session_id), record.expires_at)
        )

    async def verify(self, session_id: str) -> Session:
        """The live session of a cookie; 401 when it ended or its token was revoked."""
        key = session_key(session_id)
        record = await self._store.get(key)
        if record is None or record.expires_at <= self._clock():
            raise Unauthorized(ENDED)
        principal = await self._auth.principal_of_hash(record.token_name, record.token_sha256)
        if principal is None:
            raise Unauthorized("the token of this console session was revoked: sign in again")
        return Session(key, principal, csrf_token(session_id), record.expires_at)

    async def sign_out(self, session: Session) -> None:
        """End `session` on every instance (its streams here at once, elsewhere through the
        store watch)."""
        await self._store.delete(session.key)
        self.streams.end(session.key, "signed-out")

    def seconds_left(self, session: Session) -> float:
        return session.expires_at - self._clock()

    def follow_stream(
        self, session: Session, done: asyncio.Future[str], end: Callable[[str], None]
    ) -> None:
        """End a watch stream opened with `session` when the session ends."""
        self.streams.track(session.key, self.seconds_left(session), done, end)

    def on_session_change(self, change: FamilyChange) -> None:
        """Store watch handler of the session family: a deleted record ends its streams."""
        if change.deleted:
            self.streams.end(change.key, "signed-out")
