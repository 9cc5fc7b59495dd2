"""create_app: the FastAPI application of one service instance (no module globals)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any

from configsvc_schemas.wire import (
    FLEET_REPORTS_PATH,
    HEALTH_PATH,
    METRICS_PATH,
    READY_PATH,
    WATCH_PATH,
)
from fastapi import FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from configsvc.api import configs, fleet, health, schemas, tokens, whoami
from configsvc.api.deps import Services
from configsvc.api.fleet import handle_report
from configsvc.api.watch import handle_watch
from configsvc.asgi_types import Receive, Scope, Send
from configsvc.auth import Authenticator
from configsvc.errors import ApiError, BadRequest
from configsvc.fanout import Fanout, FanoutOptions
from configsvc.fleet.gauges import FleetGauges
from configsvc.fleet.service import FleetService
from configsvc.metrics import Metrics, MetricsMiddleware
from configsvc.registry import KindRegistry
from configsvc.settings import ServiceSettings
from configsvc.store.etcd_client import EtcdKV
from configsvc.store.etcd_store import EtcdConfigStore
from configsvc.store.fleet import FleetStore
from configsvc.store.keys import TOKEN_FAMILY, KeyLayout
from configsvc.store.replay import Replayer
from configsvc.store.watcher import FamilyChange, StoreWatcher

log = logging.getLogger("configsvc")

HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 406: "not_acceptable", 413: "payload_too_large",
              415: "unsupported_media_type"}  # fmt: skip


class ConfigsvcApp(FastAPI):
    """FastAPI, with `GET /v1/watch` and `POST /v1/fleet/reports` taken before the middleware
    stack.

    Watch streams are long-lived and carry the hot path of pushes; they are served by a lean
    ASGI handler that writes to the connection directly (see `configsvc.api.watch`). Fleet
    reports arrive from every SDK instance every interval; they are served lean too (see
    `configsvc.api.fleet`).
    """

    fanout: Fanout | None = None
    fleet: FleetService | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path, method = scope["path"], scope["method"]
            if path == WATCH_PATH and method == "GET" and self.fanout is not None:
                await handle_watch(scope, receive, send, self.state.services, self.fanout)
                return
            if path == FLEET_REPORTS_PATH and method == "POST" and self.fleet is not None:
                await handle_report(scope, receive, send, self.state.services, self.fleet)
                return
        await super().__call__(scope, receive, send)

    def close_streams(self) -> None:
        """End every open watch stream now (called when shutdown begins)."""
        if self.fanout is not None:
            self.fanout.close_all("shutdown")


def create_app(settings: ServiceSettings, endpoints: Sequence[str]) -> ConfigsvcApp:
    """The app for etcd at `endpoints`; it connects in its lifespan and closes on shutdown.

    `settings.admin_token` must be set (see `configsvc.server.ensure_admin_token`).
    """
    if not settings.admin_token:
        raise ValueError("settings.admin_token is required")
    admin_token = settings.admin_token
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        assert isinstance(app, ConfigsvcApp)
        kv = EtcdKV(list(endpoints), timeout=settings.store_timeout)
        layout = KeyLayout(settings.key_prefix)
        store = EtcdConfigStore(kv, history_limit=settings.history_limit, layout=layout)
        registry = KindRegistry()
        app.state.services = Services(
            settings=settings,
            store=store,
            registry=registry,
            auth=Authenticator(store, admin_token),
            metrics=metrics,
        )
        watcher = StoreWatcher(kv, layout)
        fanout = Fanout(
            watcher,
            Replayer(kv, layout),
            registry,
            metrics,
            FanoutOptions(keepalive=settings.keepalive, ready_timeout=settings.store_timeout),
        )
        follow_revocations(watcher, fanout)
        fleet_service = FleetService(FleetStore(kv, layout), store, registry, admin_token, metrics)
        fleet_service.follow(watcher)
        gauges = FleetGauges(fleet_service.view)
        metrics.registry.register(gauges)
        fanout.start()
        fleet_service.start()
        watcher.start()
        app.fanout = fanout
        app.fleet = fleet_service
        try:
            yield
        finally:
            app.fanout = None
            app.fleet = None
            await fanout.stop()
            await fleet_service.stop()
            metrics.registry.unregister(gauges)
            await watcher.stop()
            await store.close()

    app = ConfigsvcApp(
        # No redirects for a trailing slash: their Location would come from the client's
        # Host header, and a document path has exactly one form.
        redirect_slashes=False,
        title="configsvc",
        version="1.0",
        summary="Hot-reloading configuration for services that call LLMs",
        lifespan=lifespan,
    )
    app.include_router(health.router)
    app.include_router(configs.router)
    app.include_router(schemas.router)
    app.include_router(tokens.router)
    app.include_router(whoami.router)
    app.include_router(fleet.router)
    _document_watch_route(app)
    _declare_bearer_auth(app)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    _install_error_handlers(app)
    return app


def follow_revocations(watcher: StoreWatcher, fanout: Fanout) -> None:
    """End a token's watch streams as soon as the token is deleted, on every instance."""

    def on_token_change(change: FamilyChange) -> None:
        if change.deleted:
            fanout.close_streams_of(change.key)

    watcher.on(TOKEN_FAMILY, on_token_change)


def _document_watch_route(app: ConfigsvcApp) -> None:
    """List `GET /v1/watch` in the OpenAPI docs; requests are served by the same handler."""

    class WatchResponse(Response):
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            services = app.state.services
            if app.fanout is None:
                raise RuntimeError("the app is not started")
            await handle_watch(scope, receive, send, services, app.fanout)

    @app.get(
        WATCH_PATH,
        tags=["watch"],
        summary="Server-Sent Events: snapshot, put and delete events of the namespaces",
        response_class=WatchResponse,
        response_model=None,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def watch(
        namespace: Annotated[list[str], Query(description="namespaces to watch")],
        since: Annotated[int | None, Query(ge=0, description="resume after this revision")] = None,
    ) -> Response:
        return WatchResponse()


BEARER_SCHEME = "bearer"
PUBLIC_PATHS = (HEALTH_PATH, READY_PATH, METRICS_PATH)


def _declare_bearer_auth(app: FastAPI) -> None:
    """Declare `Authorization: Bearer <token>` in the OpenAPI description (so that tools,
    Swagger UI's "Authorize" among them, send it), on every route but the public ones."""
    describe = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = describe()
        components = schema.setdefault("components", {})
        components["securitySchemes"] = {
            BEARER_SCHEME: {
                "type": "http",
                "scheme": "bearer",
                "description": "an API token (`configsvc tokens create`) or the admin token",
            }
        }
        schema["security"] = [{BEARER_SCHEME: []}]
        for path in PUBLIC_PATHS:
            for operation in schema["paths"].get(path, {}).values():
                operation["security"] = []
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


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
