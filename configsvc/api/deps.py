"""What every router needs: the app's services and the calling principal, as dependencies."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from configsvc.auth import Authenticator, Principal
from configsvc.metrics import Metrics
from configsvc.registry import KindRegistry
from configsvc.sessions import CSRF_HEADER, SAFE_METHODS, SESSION_COOKIE, Session, SessionManager
from configsvc.settings import ServiceSettings
from configsvc.store.etcd_store import EtcdConfigStore
from configsvc.store.kinds import KindStore
from configsvc.store.rollouts import RolloutStore
from configsvc.store.space import StoreSpace

log = logging.getLogger("configsvc")


@dataclass
class Services:
    """The collaborators of one app, created by its lifespan."""

    settings: ServiceSettings
    store: EtcdConfigStore
    kinds: KindStore
    registry: KindRegistry
    auth: Authenticator
    metrics: Metrics
    space: StoreSpace
    sessions: SessionManager
    rollouts: RolloutStore
    _warned: set[str] = field(default_factory=set)

    def warn_once(self, key: str, message: str) -> None:
        """Log `message` as a warning the first time `key` is seen by this app."""
        if key not in self._warned:
            self._warned.add(key)
            log.warning("%s", message)


def services_of(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


async def get_services(request: Request) -> Services:
    """The app's services (a coroutine: FastAPI runs plain-function dependencies in a thread
    pool, which costs a thread hand-off on every request)."""
    return services_of(request)


async def authenticate(
    services: Services,
    *,
    authorization: str | None,
    session_id: str | None,
    method: str,
    csrf: str | None,
    origin: str | None = None,
) -> tuple[Principal, Session | None]:
    """The caller of a request, and its console session when it came with the cookie alone.

    A bearer token decides when there is one; else the session cookie, and then a write
    (any method but GET, HEAD, OPTIONS) also needs the session's CSRF token (403 without).
    401 when neither is valid.
    """
    if authorization or not session_id:
        return await services.auth.authenticate(authorization, origin), None
    session = await services.sessions.verify(session_id)
    if method.upper() not in SAFE_METHODS:
        session.require_csrf(csrf)
    return session.principal, session


async def get_caller(request: Request) -> Principal:
    """The caller, from `Authorization: Bearer <token>` or the console's session cookie."""
    principal, _session = await authenticate(
        services_of(request),
        authorization=request.headers.get("authorization"),
        session_id=request.cookies.get(SESSION_COOKIE),
        method=request.method,
        csrf=request.headers.get(CSRF_HEADER),
        origin=origin_of(request),
    )
    return principal


def origin_of(request: Request) -> str | None:
    """Where a request came from, as the service saw it (for the audit log)."""
    return request.client.host if request.client else None


ServicesDep = Annotated[Services, Depends(get_services)]
"""A route parameter that receives the app's `Services`."""

Caller = Annotated[Principal, Depends(get_caller)]
"""A route parameter that receives the authenticated caller."""
