"""Prometheus metrics of one app (its own registry, no globals) and the ASGI middleware."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from configsvc.asgi_types import ASGIApp, Message, Receive, Scope, Send

STORE_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)


class Metrics:
    """Requests, store latency, watch subscribers and events sent."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "configsvc_http_requests",
            "HTTP requests answered, by method, route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "configsvc_http_request_seconds",
            "Time to answer an HTTP request (to the response start for streams)",
            ["method", "route"],
            registry=self.registry,
        )
        self.store_seconds = Histogram(
            "configsvc_store_operation_seconds",
            "Latency of store operations",
            ["operation"],
            buckets=STORE_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.watch_subscribers = Gauge(
            "configsvc_watch_subscribers", "Open watch streams", registry=self.registry
        )
        self.watch_direct_fallbacks = Counter(
            "configsvc_watch_direct_fallbacks",
            "Watch streams served through ASGI because the connection could not be taken over "
            "(another server or protocol, a pipelined request)",
            registry=self.registry,
        )
        self.store_db_bytes = Gauge(
            "configsvc_store_db_bytes",
            "Size of etcd's database file, as the answering member reports it",
            registry=self.registry,
        )
        self.store_quota_bytes = Gauge(
            "configsvc_store_quota_bytes",
            "etcd's space quota (--quota-backend-bytes), when known",
            registry=self.registry,
        )
        self.store_full = Gauge(
            "configsvc_store_full",
            "1 while etcd refuses writes for space (NOSPACE), else 0",
            registry=self.registry,
        )
        self.history_trimmed = Counter(
            "configsvc_history_trimmed_versions",
            "Versions removed from history by the byte bounds or a reclaim",
            ["reason"],
            registry=self.registry,
        )
        self.events_sent = Counter(
            "configsvc_watch_events_sent",
            "Watch events written to subscribers (one per subscriber per event)",
            registry=self.registry,
        )

        self.fleet_reports = Counter(
            "configsvc_fleet_reports",
            "Fleet reports received by this instance, by result: unchanged (nothing to "
            "write), changed (the instance's record was written), refused (an error answer), "
            "streamed (none came: the instance's open watch stream stood for it)",
            ["result"],
            registry=self.registry,
        )
        self.fleet_store_writes = Counter(
            "configsvc_fleet_store_writes",
            "Fleet keys this instance wrote to etcd, by what: record (a report changed "
            "something), delete (a goodbye, or an instance silent for 3 intervals), heard "
            "(the instances that reported here lately, at most every publish period)",
            ["what"],
            registry=self.registry,
        )
        self.fleet_store_bytes = Counter(
            "configsvc_fleet_store_bytes",
            "Bytes of fleet keys this instance wrote to etcd",
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Pure ASGI middleware (no BaseHTTPMiddleware: it would slow streaming responses)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_metrics(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                route = _route_of(scope)
                self.metrics.request_seconds.labels(scope["method"], route).observe(
                    time.perf_counter() - started
                )
            await send(message)

        try:
            await self.app(scope, receive, send_with_metrics)
        finally:
            self.metrics.requests.labels(scope["method"], _route_of(scope), str(status)).inc()


def _route_of(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
