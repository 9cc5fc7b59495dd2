"""create_app: the FastAPI application of one service instance (no module globals)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from configsvc.api import configs, health, tokens
from configsvc.api.deps import Services
from configsvc.auth import Authenticator
from configsvc.errors import ApiError, BadRequest
from configsvc.metrics import Metrics, MetricsMiddleware
from configsvc.registry import KindRegistry
from configsvc.settings import ServiceSettings
from configsvc.store.etcd_client import EtcdKV
from configsvc.store.etcd_store import EtcdConfigStore

log = logging.getLogger("configsvc")

HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 406: "not_acceptable", 413: "payload_too_large",
              415: "unsupported_media_type"}  # fmt: skip


def create_app(settings: ServiceSettings, endpoints: Sequence[str]) -> FastAPI:
    """The app for etcd at `endpoints`; it connects in its lifespan and closes on shutdown.

    `settings.admin_token` must be set (see `configsvc.server.ensure_admin_token`).
    """
    if not settings.admin_token:
        raise ValueError("settings.admin_token is required")
    admin_token = settings.admin_token
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        kv = EtcdKV(list(endpoints), timeout=settings.store_timeout)
        store = EtcdConfigStore(kv, history_limit=settings.history_limit)
        app.state.services = Services(
            settings=settings,
            store=store,
            registry=KindRegistry(),
            auth=Authenticator(store, admin_token),
            metrics=metrics,
        )
        try:
            yield
        finally:
            await store.close()

    app = FastAPI(
        title="configsvc",
        version="1.0",
        summary="Hot-reloading configuration for services that call LLMs",
        lifespan=lifespan,
    )
    app.include_router(health.router)
    app.include_router(configs.router)
    app.include_router(tokens.router)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    _install_error_handlers(app)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        if exc.status >= 500:
            log.warning("answering %d: %s", exc.status, exc.message)
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def request_invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"loc": list(err["loc"]), "msg": err["msg"]} for err in exc.errors()]
        error = BadRequest("invalid request parameters", details)
        return JSONResponse(error.body(), status_code=error.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "error")
        body = {"error": {"code": code, "message": str(exc.detail), "details": []}}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)
