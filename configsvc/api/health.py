"""Liveness, readiness and metrics."""

from __future__ import annotations

from configsvc_schemas.wire import HEALTH_PATH, METRICS_PATH, READY_PATH
from fastapi import APIRouter, Response

from configsvc.api.deps import ServicesDep
from configsvc.api.http import json_response
from configsvc.api.models import HealthOut, ReadyOut
from configsvc.errors import ApiError

router = APIRouter(tags=["health"])


@router.get(HEALTH_PATH, summary="Liveness: the process answers", response_model=HealthOut)
async def healthz() -> Response:
    return json_response({"status": "ok"})


@router.get(
    READY_PATH,
    summary="Readiness: the store answers",
    response_model=ReadyOut,
    responses={503: {"model": ReadyOut, "description": "the store does not answer"}},
)
async def readyz(services: ServicesDep) -> Response:
    try:
        revision = await services.store.revision()
    except ApiError as exc:
        return json_response({"status": "unavailable", "reason": exc.message}, status=503)
    if services.space.full:
        # Reads and streams still work: a balancer must not take every instance out.
        return json_response({"status": "store_full", "revision": revision})
    return json_response({"status": "ready", "revision": revision})


@router.get(
    METRICS_PATH,
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(services: ServicesDep) -> Response:
    return Response(
        services.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
    )
