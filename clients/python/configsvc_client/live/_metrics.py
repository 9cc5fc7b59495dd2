"""Prometheus metrics of routers (needs `prometheus_client`), read at scrape time: a call
pays nothing for them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from configsvc_client.live._breaker import BreakerState
from configsvc_client.live._router import LiveRouter

if TYPE_CHECKING:
    from prometheus_client.registry import CollectorRegistry

DEFAULT_PREFIX = "configsvc_live"

BREAKER_VALUES = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}
"""`<prefix>_breaker_state`: 0 closed, 1 half-open, 2 open."""

TIMEOUT_FIELDS = ("connect", "read", "write", "pool", "first_token", "idle", "total")


class LiveMetrics:
    """A Prometheus collector of any number of routers, each under a `router` label.

    ```python
    metrics = LiveMetrics()                       # registers in prometheus_client's REGISTRY
    metrics.add(transport.router, "chat")
    ```
    Series per endpoint: `_tries_total`, `_successes_total`, `_failures_total{cause}`,
    `_skipped_total`, `_breaker_state`, `_latency_seconds{quantile}` (observed, recent
    tries) next to `_timeout_seconds{kind}` (configured) and `_adaptive_read_seconds{key}`
    (learnt).
    """

    def __init__(
        self, registry: CollectorRegistry | None = None, *, prefix: str = DEFAULT_PREFIX
    ) -> None:
        try:
            from prometheus_client import REGISTRY
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("LiveMetrics needs prometheus_client") from exc
        self._prefix = prefix
        self._routers: dict[str, LiveRouter] = {}
        (registry if registry is not None else REGISTRY).register(self)

    def add(self, router: LiveRouter, name: str = "default") -> None:
        """Report `router` under the label `router=name` (a name already given is replaced)."""
        self._routers[name] = router

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        p, labels = self._prefix, ["router", "endpoint"]
        tries = CounterMetricFamily(f"{p}_tries", "Requests sent to the endpoint", labels=labels)
        ok = CounterMetricFamily(f"{p}_successes", "Tries that got an answer", labels=labels)
        failures = CounterMetricFamily(
            f"{p}_failures", "Failed tries by cause", labels=[*labels, "cause"]
        )
        skipped = CounterMetricFamily(f"{p}_skipped", "Tries not sent: breaker open", labels=labels)
        breaker = GaugeMetricFamily(
            f"{p}_breaker_state", "0 closed, 1 half-open, 2 open", labels=labels
        )
        latency = GaugeMetricFamily(
            f"{p}_latency_seconds",
            "Observed latency of recent successful tries",
            labels=[*labels, "quantile"],
        )
        timeout = GaugeMetricFamily(
            f"{p}_timeout_seconds", "Configured timeouts", labels=[*labels, "kind"]
        )
        adaptive = GaugeMetricFamily(
            f"{p}_adaptive_read_seconds", "Learnt read timeouts", labels=[*labels, "key"]
        )
        for router_name, router in sorted(self._routers.items()):
            for name, status in router.status().endpoints.items():
                at = [router_name, name]
                tries.add_metric(at, status.tries)
                ok.add_metric(at, status.successes)
                skipped.add_metric(at, status.skipped)
                for cause, count in sorted(status.failures.items()):
                    failures.add_metric([*at, cause], count)
                if status.breaker is not None:
                    breaker.add_metric(at, BREAKER_VALUES[status.breaker])
                summary = status.latency
                for quantile, value in (
                    ("0.5", summary.p50),
                    ("0.9", summary.p90),
                    ("0.99", summary.p99),
                ):
                    if value is not None:
                        latency.add_metric([*at, quantile], value)
                for kind in TIMEOUT_FIELDS:
                    seconds = getattr(status.timeout, kind)
                    if seconds is not None:
                        timeout.add_metric([*at, kind], seconds)
                for key, seconds in status.adaptive_read.items():
                    adaptive.add_metric([*at, key], seconds)
        yield from (tries, ok, failures, skipped, breaker, latency, timeout, adaptive)
