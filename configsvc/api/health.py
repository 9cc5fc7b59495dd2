"""Liveness, readiness, metrics and the kinds' JSON Schemas."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from configsvc.api.deps import Services, principal, services
from configsvc.api.http import check_request, json_response
from configsvc.auth import Principal
from configsvc.errors import ApiError

router = APIRouter(tags=["health"])

App = Annotated[Services, Depends(services)]
Caller = Annotated[Principal, Depends(principal)]

READY_TIMEOUT_SECONDS = 2.0


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> Response:
    return json_response({"status": "ok"})


@router.get("/readyz", summary="Readiness: the store answers")
async def readyz(app: App) -> Response:
    try:
        revision = await app.store.revision()
    except ApiError as exc:
        return json_response({"status": "unavailable", "reason": exc.message}, status=503)
    return json_response({"status": "ready", "revision": revision})


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(app: App) -> Response:
    return Response(app.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get(
    "/v1/schemas",
    summary="The kinds this service knows, with their JSON Schema",
    dependencies=[Depends(check_request)],
)
async def list_schemas(app: App, caller: Caller) -> Response:
    items = [
        {"kind": name, "schema": app.registry.get(name).json_schema()}
        for name in app.registry.names()
    ]
    return json_response({"items": items})


@router.get(
    "/v1/schemas/{kind}",
    summary="One kind's JSON Schema",
    dependencies=[Depends(check_request)],
)
async def get_schema(kind: str, app: App, caller: Caller) -> Response:
    return json_response({"kind": kind, "schema": app.registry.get(kind).json_schema()})


@router.get(
    "/v1/whoami",
    summary="The calling token: its name, role, namespace patterns and secret permission",
    dependencies=[Depends(check_request)],
)
async def whoami(caller: Caller) -> Response:
    return json_response(
        {
            "name": caller.name,
            "role": caller.role.value,
            "namespaces": list(caller.namespaces),
            "secrets": caller.secrets,
        }
    )
