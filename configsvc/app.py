"""create_app: the FastAPI application of one service instance (no module globals)."""

from __future__ import annotations

import asyncio
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

from configsvc.api import (
    admin,
    backup,
    configs,
    fleet,
    health,
    promote,
    rollouts,
    schemas,
    session,
    tokens,
    whoami,
)
from configsvc.api.console import install_console
from configsvc.api.deps import Services
from configsvc.api.fleet import handle_report
from configsvc.api.watch import handle_watch
from configsvc.asgi_types import Receive, Scope, Send
from configsvc.auth import Authenticator
from configsvc.auth_throttle import AuthThrottle, ThrottleOptions
from configsvc.crypto.keyring import load_keyring
from configsvc.crypto.sealing import Sealer
from configsvc.crypto.store_keys import check_store_keys
from configsvc.errors import ApiError, BadRequest
from configsvc.fanout import Fanout, FanoutOptions
from configsvc.fleet.gauges import FleetGauges
from configsvc.fleet.service import FleetService
from configsvc.kinds import KindRegistry
from configsvc.metrics import Metrics, MetricsMiddleware
from configsvc.rollouts.checks import promotion_check
from configsvc.rollouts.replay import RolloutAwareReplayer
from configsvc.rollouts.scheduler import RolloutScheduler, fleet_members
from configsvc.sessions import SESSION_PATH, SessionManager, SessionOptions
from configsvc.settings import ServiceSettings
from configsvc.startup import prepare_when_reachable, reseal_when_reachable
from configsvc.store.etcd_client import EtcdKV
from configsvc.store.etcd_connection import EtcdConnection
from configsvc.store.etcd_store import EtcdConfigStore
from configsvc.store.fleet import FleetStore
from configsvc.store.keys import SESSION_FAMILY, TOKEN_FAMILY, KeyLayout
from configsvc.store.kinds import KindStore
from configsvc.store.migrate import migrate
from configsvc.store.rollouts import RolloutStore
from configsvc.store.sessions import SessionStore
from configsvc.store.space import SpaceOptions, StoreSpace
from configsvc.store.spec_codec import SpecCodec
from configsvc.store.trimming import BoundsOptions, HistoryBounds
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
    connection = etcd_connection(settings, endpoints)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        assert isinstance(app, ConfigsvcApp)
        layout = KeyLayout(settings.key_prefix)
        kv = EtcdKV(connection, timeout=settings.store_timeout, revision_key=layout.prefix.encode())
        registry = KindRegistry()
        key_file = settings.secret_key_file
        sealer = Sealer(load_keyring(key_file)) if key_file is not None else None
        codec = SpecCodec(sealer, registry.secret_paths)
        store = EtcdConfigStore(
            kv, history_limit=settings.history_limit, layout=layout, codec=codec
        )
        kinds = KindStore(kv, layout, history_limit=settings.history_limit, reads=store.reads)
        rollout_store = RolloutStore(store)
        registry.use_store(kinds)
        space = StoreSpace(
            kv,
            metrics,
            SpaceOptions(
                quota_bytes=settings.etcd_quota_bytes,
                defragment_ratio=DEFRAGMENT_RATIO if settings.etcd_auto_defragment else None,
            ),
        )
        bounds = HistoryBounds(
            kv,
            layout,
            metrics,
            BoundsOptions(
                bytes_per_document=settings.history_bytes_per_document,
                bytes_total=settings.history_bytes,
            ),
        )
        auth = Authenticator(
            store,
            admin_token,
            AuthThrottle(ThrottleOptions(max_failures=settings.auth_failures_per_minute)),
        )
        sessions = SessionManager(
            SessionStore(kv, layout), auth, SessionOptions(ttl=settings.session_ttl)
        )
        app.state.services = Services(
            settings=settings,
            store=store,
            kinds=kinds,
            registry=registry,
            auth=auth,
            metrics=metrics,
            space=space,
            sessions=sessions,
            rollouts=rollout_store,
        )
        watcher = StoreWatcher(kv, layout)
        registry.follow(watcher)  # first: a kind's change is known before its documents'
        fanout = Fanout(
            watcher,
            RolloutAwareReplayer(kv, layout, codec, registry, rollout_store),
            codec,
            registry,
            metrics,
            FanoutOptions(keepalive=settings.keepalive, ready_timeout=settings.store_timeout),
        )
        follow_revocations(watcher, fanout)
        watcher.on(SESSION_FAMILY, sessions.on_session_change)
        migration = await start_migration(store, settings.store_timeout)
        fleet_service = FleetService(
            FleetStore(kv, layout),
            store,
            registry,
            admin_token,
            metrics,
            throttle=auth.throttle,
        )
        fleet_service.follow(watcher)
        fanout.follow_named_streams(fleet_service)
        scheduler = RolloutScheduler(
            rollout_store,
            fleet_members(fleet_service),
            promotion_check(registry),
        )
        scheduler.follow(watcher)
        gauges = FleetGauges(fleet_service.view)
        metrics.registry.register(gauges)
        fanout.start()
        fleet_service.start()
        scheduler.start()
        watcher.start()
        space.start()
        bounds.start()
        app.fanout = fanout
        app.fleet = fleet_service
        try:
            yield
        finally:
            app.fanout = None
            app.fleet = None
            migration.cancel()
            await space.stop()
            await bounds.stop()
            await fanout.stop()
            await scheduler.stop()
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
        # Swagger UI is served from the package by install_console (FastAPI's loads it from
        # a CDN, with an inline script); ReDoc likewise needs a CDN, so it is off.
        docs_url=None,
        redoc_url=None,
    )
    app.include_router(health.router)
    app.include_router(configs.router)
    app.include_router(promote.router)
    app.include_router(rollouts.router)
    app.include_router(schemas.router)
    app.include_router(tokens.router)
    app.include_router(whoami.router)
    app.include_router(admin.router)
    app.include_router(backup.router)
    app.include_router(session.router)
    install_console(app)
    app.include_router(fleet.router)
    _document_watch_route(app)
    _declare_bearer_auth(app)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    _install_error_handlers(app)
    return app


async def start_migration(store: EtcdConfigStore, wait: float) -> asyncio.Task[None]:
    """Check and prepare the store for this release: its key layout (a store of a newer
    layout stops the start with `NewerLayout`) and the keys that sealed its secrets (a
    missing or wrong key stops it with `KeyringError`), at once when etcd answers, else in
    the background; then seal any secret still in clear, in the background."""
    kv, layout, codec = store.kv, store.layout, store.codec
    try:
        async with asyncio.timeout(wait):
            await migrate(kv, layout)
            await check_store_keys(kv, layout, codec.sealer)
    except (ApiError, TimeoutError) as exc:
        log.warning("etcd not reachable for the start-up checks (%s); retrying", exc)
        return asyncio.create_task(prepare_when_reachable(store))
    return asyncio.create_task(reseal_when_reachable(store))


def etcd_connection(settings: ServiceSettings, endpoints: Sequence[str]) -> EtcdConnection:
    """How to reach etcd at `endpoints` with the TLS files and credentials of `settings`;
    raises `ConfigsvcError` when they do not fit together or a file cannot be read."""
    password = settings.etcd_password
    return EtcdConnection.create(
        endpoints,
        ca=settings.etcd_ca,
        cert=settings.etcd_cert,
        key=settings.etcd_key,
        user=settings.etcd_user,
        password=password.get_secret_value() if password is not None else None,
    )


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


DEFRAGMENT_RATIO = 0.5
"""Free share of an owned etcd's database past which it is defragmented."""
BEARER_SCHEME = "bearer"
PUBLIC_PATHS = (HEALTH_PATH, READY_PATH, METRICS_PATH, SESSION_PATH)


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
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

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
