"""What every router needs: the app's services and the calling principal."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from configsvc.auth import Authenticator, Principal
from configsvc.metrics import Metrics
from configsvc.registry import KindRegistry
from configsvc.settings import ServiceSettings
from configsvc.store.etcd_store import EtcdConfigStore


@dataclass
class Services:
    """The collaborators of one app, created by its lifespan."""

    settings: ServiceSettings
    store: EtcdConfigStore
    registry: KindRegistry
    auth: Authenticator
    metrics: Metrics


def services_of(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


async def services(request: Request) -> Services:
    """The app's services (a coroutine: FastAPI runs plain-function dependencies in a thread
    pool, which costs a thread hand-off on every request)."""
    return services_of(request)


async def principal(request: Request) -> Principal:
    """The caller, from `Authorization: Bearer <token>`; 401 if missing or not valid."""
    return await services_of(request).auth.authenticate(request.headers.get("authorization"))
