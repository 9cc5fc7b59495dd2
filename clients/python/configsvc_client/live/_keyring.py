"""LiveKeyring: checks callers' API keys against a live `AuthKeys` document.

(No `from __future__ import annotations` here: FastAPI reads the dependency's
annotations at runtime, and they name classes imported inside `dependency`.)
"""

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from configsvc_schemas import AuthKey, AuthKeys, KeyState

from configsvc_client.live._types import Fixed, LiveValue

BEARER_REALM = "api"
"""The realm named in the `WWW-Authenticate` header of a 401."""


def hash_key(api_key: str) -> str:
    """The `sha256` an `AuthKeys` entry holds for `api_key` (64 lowercase hex chars)."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """The key a caller presented, as verified: never the key or its hash."""

    id: str
    scopes: tuple[str, ...]
    state: KeyState
    not_before: datetime | None
    expires_at: datetime | None

    @property
    def retiring(self) -> bool:
        """True while the key is being rotated out: still accepted, soon revoked."""
        return self.state is KeyState.RETIRING

    @classmethod
    def of(cls, key: AuthKey) -> "KeyInfo":
        """The public facts of an `AuthKey`."""
        return cls(key.id, tuple(key.scopes), key.state, key.not_before, key.expires_at)


class LiveKeyring:
    """Verifies API keys against a live `AuthKeys` document, re-read on every call.

    A key passes when the sha256 of the presented key matches an entry (compared in
    constant time with every entry), the entry is `active` or `retiring` (not
    `revoked`), the time is within `not_before`/`expires_at`, and, when a scope is
    asked for, the entry lists it. With no document, no key passes.

    Rotation with overlap and no restart: add the new key as `active`, mark the old
    one `retiring` (it still passes; `KeyInfo.retiring` lets a service warn its
    caller), later `revoked`.

    `now` returns the current aware datetime (for tests).
    """

    def __init__(
        self,
        keys: LiveValue[AuthKeys] | AuthKeys,
        *,
        now: Callable[[], datetime] = _now,
    ) -> None:
        self._keys: LiveValue[AuthKeys] = Fixed(keys) if isinstance(keys, AuthKeys) else keys
        self._now = now

    def verify(self, api_key: str | None, scope: str | None = None) -> KeyInfo | None:
        """The verified key, or None: no key, unknown, revoked, outside its validity
        window, or lacking `scope`."""
        key = self._identify(api_key)
        if key is None or (scope is not None and scope not in key.scopes):
            return None
        return key

    def dependency(self, scope: str | None = None) -> Callable[..., Awaitable[KeyInfo]]:
        """A FastAPI dependency returning the caller's `KeyInfo` from
        `Authorization: Bearer <key>`.

        Answers 401 (with `WWW-Authenticate: Bearer`) for a missing or failing key and
        403 for a valid key without `scope`::

            @app.post("/v1/chat/completions")
            async def chat(caller: Annotated[KeyInfo, Depends(keyring.dependency("chat"))]):
                ...
        """
        from fastapi import Depends, HTTPException, status
        from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

        bearer = HTTPBearer(auto_error=False, scheme_name="api_key")
        challenge = {"WWW-Authenticate": f'Bearer realm="{BEARER_REALM}"'}

        async def require_api_key(
            credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        ) -> KeyInfo:
            if credentials is None:
                raise HTTPException(
                    status.HTTP_401_UNAUTHORIZED, "missing API key", headers=challenge
                )
            info = self._identify(credentials.credentials)
            if info is None:
                raise HTTPException(
                    status.HTTP_401_UNAUTHORIZED,
                    "invalid, expired or revoked API key",
                    headers=challenge,
                )
            if scope is not None and scope not in info.scopes:
                raise HTTPException(
                    status.HTTP_403_FORBIDDEN, f"API key {info.id!r} lacks scope {scope!r}"
                )
            return info

        return require_api_key

    def _identify(self, api_key: str | None) -> KeyInfo | None:
        """The valid entry matching `api_key`, ignoring scopes."""
        document = self._keys.value
        if not api_key or document is None:
            return None
        digest = hash_key(api_key).encode("ascii")
        now = self._now()
        found: AuthKey | None = None
        for entry in document.keys:
            # Every entry is compared, so the time taken does not tell which one matched.
            matches = hmac.compare_digest(digest, entry.sha256.encode("ascii"))
            if matches and found is None and entry.valid_at(now):
                found = entry
        return None if found is None else KeyInfo.of(found)
