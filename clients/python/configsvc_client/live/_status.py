"""What a router has seen, per endpoint: plain frozen values, safe to log or serve.

They hold no secret (never an `api_key`), only names, URLs, counts and seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from configsvc_schemas import Timeout

from configsvc_client.live._breaker import BreakerState

LATENCY_PERCENTILES = (50.0, 90.0, 99.0)
"""The percentiles of observed latency a status reports."""


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Observed latency of the endpoint's recent successful tries, in seconds.

    A try's latency is the time to its whole answer, or to the first body byte of a
    streamed answer: the wait that `timeout.read` (`first_token` for streams) bounds.
    """

    count: int
    """Samples seen in all (the percentiles cover the most recent ones)."""
    p50: float | None
    p90: float | None
    p99: float | None


@dataclass(frozen=True, slots=True)
class EndpointStatus:
    """One endpoint as this process sees it."""

    name: str
    base_url: str
    model: str
    tries: int
    """Requests sent to the endpoint."""
    successes: int
    """Tries that got an answer (any status not in the retry policy's)."""
    failures: Mapping[str, int]
    """Failed tries by cause: `connect`, `timeout`, `first_token`, `idle`, `total`,
    `interrupted`, `network`, `status_<code>`."""
    skipped: int
    """Tries not sent because the breaker was open."""
    breaker: BreakerState | None
    """None when the endpoint has no `breaker`."""
    breaker_retry_in: float
    """Seconds until an open breaker lets a trial through (0 otherwise)."""
    latency: LatencySummary
    timeout: Timeout
    """The configured timeouts (the endpoint's own, before task classes)."""
    adaptive_read: Mapping[str, float]
    """Read timeouts learnt so far, by `<task or "-">/<stream|call>`."""

    @property
    def failed(self) -> int:
        """Failed tries, all causes together."""
        return sum(self.failures.values())

    @property
    def error_rate(self) -> float | None:
        """Failed tries / tries, or None before the first try."""
        return self.failed / self.tries if self.tries else None


@dataclass(frozen=True, slots=True)
class RouterStatus:
    """Every endpoint of the current document, by name."""

    endpoints: Mapping[str, EndpointStatus]
    groups: Mapping[str, Mapping[str, float]]
    document_changes: int
    """Documents applied so far (0 before the first)."""
