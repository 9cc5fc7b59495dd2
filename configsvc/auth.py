"""Tokens, roles and namespace patterns.

The admin token comes from the settings (`CONFIGSVC_ADMIN_TOKEN` or `<data-dir>/admin.token`);
every other token is created through the API and stored in etcd as a sha256 hash. A token
reads `cst.<name>.<secret>`: the name finds the record, the secret's hash is compared in
constant time. Tokens are looked up in etcd on every request, so a revoked token stops
working at once on every service instance.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from configsvc_schemas.wire import ADMIN_NAME, NAMESPACE_PATTERN_RULE, Role, is_valid_name

from configsvc.auth_throttle import AuthThrottle
from configsvc.errors import Forbidden, Unauthorized
from configsvc.store.records import TokenRecord

TOKEN_PREFIX = "cst"  # noqa: S105 - a label, not a secret
SECRET_BYTES = 32

__all__ = ["ADMIN_NAME", "Authenticator", "Principal", "Role"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a token's name, role, namespace patterns and secret permission."""

    name: str
    role: Role
    namespaces: tuple[str, ...]
    secrets: bool

    def may_access(self, ns: str) -> bool:
        """True when one of the token's namespace patterns matches `ns`."""
        return any(fnmatch.fnmatchcase(ns, pattern) for pattern in self.namespaces)

    def covers(self, pattern: str) -> bool:
        """True when every namespace `pattern` matches is one this token may access.

        Decided conservatively: `*` covers everything, `prefix*` covers patterns that start
        with `prefix`, and any other pattern covers only itself.
        """
        for own in self.namespaces:
            if own == "*" or own == pattern:
                return True
            prefix = own[:-1]
            if own.endswith("*") and "*" not in prefix and pattern.startswith(prefix):
                return True
        return False

    def require_grant(self, patterns: Sequence[str], secrets: bool) -> None:
        """Raise `Forbidden` unless this token may hand out `patterns` and `secrets`: a token
        can create tokens that reach no further than itself."""
        beyond = [pattern for pattern in patterns if not self.covers(pattern)]
        if beyond:
            raise Forbidden(
                f"token {self.name!r} may not grant namespaces beyond its own: {', '.join(beyond)}"
            )
        if secrets and not self.secrets:
            raise Forbidden(f"token {self.name!r} may not read secrets, so it may not grant it")

    def require(self, role: Role, ns: str | None = None) -> None:
        """Raise `Forbidden` unless the token has `role` (or higher) and may touch `ns`."""
        if self.role.rank < role.rank:
            raise Forbidden(f"token {self.name!r} has role {self.role.value}; {role.value} needed")
        if ns is not None and not self.may_access(ns):
            raise Forbidden(f"token {self.name!r} may not access namespace {ns!r}")


ADMIN_PRINCIPAL = Principal(ADMIN_NAME, Role.ADMIN, ("*",), secrets=True)
"""The service's own admin token (from the settings, never stored)."""


def hash_secret(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(name: str) -> str:
    """A fresh token for `name`: `cst.<name>.<43 url-safe characters>`."""
    return f"{TOKEN_PREFIX}.{name}.{secrets.token_urlsafe(SECRET_BYTES)}"


def token_name(token: str) -> str | None:
    """The token name a `cst.<name>.<secret>` token carries, or None for other forms."""
    prefix, sep, rest = token.partition(".")
    name, sep2, secret = rest.rpartition(".")
    if prefix != TOKEN_PREFIX or not sep or not sep2 or not secret:
        return None
    return name if is_valid_name(name) else None


def validate_patterns(patterns: list[str]) -> tuple[str, ...]:
    """Namespace patterns as stored; each is a namespace name with `*` wildcards."""
    bad = [p for p in patterns if not NAMESPACE_PATTERN_RULE.fullmatch(p)]
    if bad or not patterns:
        raise ValueError("namespace patterns are names with * wildcards, e.g. prod, team-a-*, *")
    return tuple(patterns)


class TokenLookup(Protocol):
    """Where token records come from: the store (every request), or a cache of it."""

    async def get_token(self, name: str) -> TokenRecord | None: ...


class Authenticator:
    """Turns a bearer token into a `Principal`, or refuses it with 401."""

    def __init__(
        self, store: TokenLookup, admin_token: str, throttle: AuthThrottle | None = None
    ) -> None:
        self._store = store
        self._admin_hash = hash_secret(admin_token).encode()
        self.throttle = throttle or AuthThrottle()

    async def authenticate(self, authorization: str | None, origin: str | None = None) -> Principal:
        """The caller of `Authorization: Bearer <token>` from `origin` (the client's
        address); 401 when missing or not valid, 429 when `origin` sent too many invalid
        tokens lately (see `auth_throttle`)."""
        return await self.authenticate_token(_bearer(authorization), origin)

    async def authenticate_token(self, token: str, origin: str | None = None) -> Principal:
        """The principal of `token`; 401 when it is not a valid token (429 as above)."""
        presented = hash_secret(token)
        self.throttle.check(origin, presented)
        principal: Principal | None
        if hmac.compare_digest(presented.encode(), self._admin_hash):
            principal = ADMIN_PRINCIPAL
        else:
            name = token_name(token)
            principal = None if name is None else await self.principal_of_hash(name, presented)
        if principal is None:
            self.throttle.failed(origin)
            raise Unauthorized("invalid token")
        self.throttle.succeeded(origin, presented)
        return principal

    async def principal_of_hash(self, name: str, sha256: str) -> Principal | None:
        """The principal of the token called `name` whose hash is `sha256`; None when that
        token was revoked or replaced. Read from the store on every call, so that what rests
        on a token (a console session) ends at once when the token does."""
        if name == ADMIN_NAME:
            return (
                ADMIN_PRINCIPAL if hmac.compare_digest(sha256.encode(), self._admin_hash) else None
            )
        record = await self._store.get_token(name)
        if record is None or not hmac.compare_digest(sha256.encode(), record.sha256.encode()):
            return None
        return principal_of(record)


def principal_of(record: TokenRecord) -> Principal:
    return Principal(record.name, Role(record.role), record.namespaces, record.secrets)


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise Unauthorized("missing token: send Authorization: Bearer <token>")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("malformed Authorization header: expected 'Bearer <token>'")
    return token.strip()
