"""LiveRouter: which endpoints a call tries, with what settings, and what each has done.

The router follows a live `ModelEndpoints` document. Per endpoint and per process it
keeps a circuit breaker, counters, observed latencies and learnt read timeouts; per
group, the weighted picker. A new document keeps what still applies and drops the rest
(a removed endpoint's breaker, the state of an endpoint whose URL changed); calls already
running keep the snapshot they started with.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from configsvc_schemas import Endpoint, ModelEndpoints, Retry, Timeout
from configsvc_schemas.model_endpoints import merged_retry, merged_timeout

from configsvc_client._types import CallUsage, Document
from configsvc_client.live._breaker import BreakerState, CircuitBreaker
from configsvc_client.live._errors import NotConfigured
from configsvc_client.live._latency import LATENCY_WINDOW, AdaptiveTimeout, LatencyWindow
from configsvc_client.live._status import (
    LATENCY_PERCENTILES,
    EndpointStatus,
    LatencySummary,
    RouterStatus,
)
from configsvc_client.live._types import Fixed, LiveValue
from configsvc_client.live._weights import WeightedPicker

NO_TASK = "-"
"""How a call without a task class is named in status keys."""


@dataclass(frozen=True, slots=True)
class Target:
    """One endpoint a call may try: its name in the document and its settings."""

    name: str
    endpoint: Endpoint


@dataclass(frozen=True, slots=True)
class Settings:
    """An endpoint's settings for one task class (the task's merged over its own)."""

    timeout: Timeout
    retry: Retry
    on_status: frozenset[int] | None


class Health:
    """What one process has seen of one endpoint. Mutated under the router's lock."""

    __slots__ = (
        "adaptive",
        "base_url",
        "breaker",
        "failures",
        "latency",
        "model",
        "skipped",
        "successes",
        "tries",
    )

    def __init__(self, endpoint: Endpoint) -> None:
        self.base_url = endpoint.base_url
        self.model = endpoint.model
        self.breaker = CircuitBreaker(endpoint.breaker) if endpoint.breaker else None
        self.tries = 0
        self.successes = 0
        self.skipped = 0
        self.failures: Counter[str] = Counter()
        self.latency = LatencyWindow(LATENCY_WINDOW)
        self.adaptive: dict[tuple[str | None, bool], AdaptiveTimeout] = {}

    def follows(self, endpoint: Endpoint) -> bool:
        """Whether this state still describes `endpoint` (same server and model)."""
        return self.base_url == endpoint.base_url and self.model == endpoint.model

    def update(self, endpoint: Endpoint) -> None:
        """New settings for the same server: keep the counts, follow the new thresholds."""
        if endpoint.breaker is None:
            self.breaker = None
        elif self.breaker is None:
            self.breaker = CircuitBreaker(endpoint.breaker)
        else:
            self.breaker.settings = endpoint.breaker
        if endpoint.adaptive is None:
            self.adaptive.clear()
        else:
            for key, learnt in list(self.adaptive.items()):
                if learnt.settings != endpoint.adaptive:
                    del self.adaptive[key]

    def available(self, now: float) -> bool:
        """Whether a weighted pick may choose it (its breaker is not open)."""
        breaker = self.breaker
        return breaker is None or breaker.state(now) is not BreakerState.OPEN


class Snapshot:
    """One version of the document, resolved: settings per endpoint and task class, the
    health of each endpoint, the weighted pickers. Calls hold on to the one they began with.
    """

    __slots__ = (
        "_settings",
        "base_urls",
        "document",
        "failures",
        "health",
        "pickers",
        "tries",
        "version",
    )

    def __init__(
        self,
        document: ModelEndpoints,
        health: dict[str, Health],
        pickers: dict[str, WeightedPicker],
        version: int | None = None,
    ) -> None:
        self.document = document
        self.health = health
        self.pickers = pickers
        self.base_urls = frozenset(e.base_url for e in document.endpoints.values())
        self._settings: dict[tuple[str, str | None], Settings] = {}
        self.version = version
        """The document version this is (when the live value says: a `Binding` does)."""
        self.tries = 0
        self.failures = 0
        """Tries that ended while this was the current version, and those that failed."""

    def settings(self, name: str, task: str | None) -> Settings:
        """Endpoint `name`'s settings for `task` (an unknown task: the endpoint's own)."""
        key = (name, task)
        found = self._settings.get(key)
        if found is None:
            endpoint = self.document.endpoints[name]
            timeout, retry = endpoint.timeout, endpoint.retry
            spec = self.document.tasks.get(task) if task is not None else None
            if spec is not None:
                timeout = merged_timeout(timeout, spec.timeout)
                retry = merged_retry(retry, spec.retry)
            on_status = frozenset(retry.on_status) if retry.on_status is not None else None
            found = self._settings[key] = Settings(timeout, retry, on_status)
        return found


class LiveRouter:
    """Routing state for one live `ModelEndpoints` document, shared by the clients and
    transports built on it (pass the router itself instead of the document to share).

    `monotonic` is the clock of breakers, latencies and deadlines (tests inject one).
    Thread-safe: clients on several event loops or threads may share a router.
    """

    def __init__(
        self,
        models: LiveValue[ModelEndpoints] | ModelEndpoints,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._models: LiveValue[ModelEndpoints] = (
            Fixed(models) if isinstance(models, ModelEndpoints) else models
        )
        self.monotonic = monotonic
        self.lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._changes = 0

    # -- the document -------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The current document, resolved; raises `NotConfigured` while there is none."""
        document = self._models.value
        snapshot = self._snapshot
        if snapshot is not None and snapshot.document is document:
            return snapshot
        if document is None:
            raise NotConfigured("the ModelEndpoints document has no value (yet)")
        with self.lock:
            snapshot = self._snapshot
            if snapshot is None or snapshot.document is not document:
                snapshot = self._snapshot = self._resolve(document, snapshot)
                self._changes += 1
        return snapshot

    def _resolve(self, document: ModelEndpoints, old: Snapshot | None) -> Snapshot:
        health: dict[str, Health] = {}
        for name, endpoint in document.endpoints.items():
            kept = old.health.get(name) if old is not None else None
            if kept is not None and kept.follows(endpoint):
                kept.update(endpoint)
                health[name] = kept
            else:
                health[name] = Health(endpoint)
        pickers: dict[str, WeightedPicker] = {}
        for group, weights in document.groups.items():
            previous = old.pickers.get(group) if old is not None else None
            same = previous is not None and previous.weights == weights
            pickers[group] = previous if same and previous else WeightedPicker(weights)
        return Snapshot(document, health, pickers, _version_of(self._models))

    # -- one call -----------------------------------------------------------------

    def plan(
        self, snapshot: Snapshot, first: str | None = None, *, fallbacks: bool = True
    ) -> Iterator[Target]:
        """The endpoints a call tries, in order: `first` (None: the document's default)
        then the fallbacks; a group yields its member picked by weight (among those whose
        breaker is not open), then its other members, heaviest first. Each endpoint once.
        Raises `NotConfigured` when `first` names no endpoint or group.
        """
        document = snapshot.document
        name = document.default if first is None else first
        if name not in document.endpoints and name not in document.groups:
            raise NotConfigured(f"the ModelEndpoints document has no endpoint {name!r}")
        names = [name, *document.fallbacks] if fallbacks else [name]
        return self._expand(snapshot, names, commit=True)

    def _expand(self, snapshot: Snapshot, names: list[str], *, commit: bool) -> Iterator[Target]:
        document, health = snapshot.document, snapshot.health
        seen: set[str] = set()
        now = self.monotonic()

        def eligible(member: str) -> bool:
            return health[member].available(now)

        for name in names:
            picker = snapshot.pickers.get(name)
            if picker is None:
                members: Iterable[str] = (name,)
            else:
                with self.lock:
                    chosen = picker.pick(eligible, commit=commit)
                members = itertools.chain((chosen,) if chosen else (), picker.rest(chosen))
            for member in members:
                if member not in seen:
                    seen.add(member)
                    yield Target(member, document.endpoints[member])

    def targets(self, first: str | None = None, *, fallbacks: bool = True) -> list[Target]:
        """The endpoints a call starting now would try, in order (weighted picks peeked,
        not taken). Raises `NotConfigured` when the document has no value or lacks `first`.
        """
        snapshot = self.snapshot()
        document = snapshot.document
        name = document.default if first is None else first
        if name not in document.endpoints and name not in document.groups:
            raise NotConfigured(f"the ModelEndpoints document has no endpoint {name!r}")
        names = [name, *document.fallbacks] if fallbacks else [name]
        return list(self._expand(snapshot, names, commit=False))

    # -- what happened ------------------------------------------------------------

    def admit(self, health: Health) -> bool:
        """Whether a try may go to the endpoint now (its breaker); counts a skip if not."""
        breaker = health.breaker
        if breaker is None:
            return True
        with self.lock:
            if breaker.admit(self.monotonic()):
                return True
            health.skipped += 1
            return False

    def adaptive_read(
        self, health: Health, endpoint: Endpoint, key: tuple[str | None, bool]
    ) -> float | None:
        """The read timeout learnt for `key` (task, streamed), or None (not enabled, or
        not enough samples yet)."""
        if endpoint.adaptive is None:
            return None
        learnt = health.adaptive.get(key)
        return learnt.value if learnt is not None else None

    def succeeded(
        self,
        health: Health,
        endpoint: Endpoint,
        key: tuple[str | None, bool],
        latency: float | None,
    ) -> None:
        """A try answered; `latency` (None: not a sample, e.g. a 4xx) feeds the window."""
        with self.lock:
            health.tries += 1
            health.successes += 1
            if self._snapshot is not None:
                self._snapshot.tries += 1
            if health.breaker is not None:
                health.breaker.succeeded()
            if latency is not None:
                health.latency.add(latency)
                self._learn(health, endpoint, key, latency)

    def failed(
        self,
        health: Health,
        endpoint: Endpoint,
        key: tuple[str | None, bool],
        cause: str,
        *,
        waited: float | None = None,
        counted: bool = True,
    ) -> None:
        """A try failed by `cause`; `waited` (a timeout's wait) feeds the adaptive timeout.
        `counted=False` for a failure after a success was counted (a broken stream)."""
        with self.lock:
            if counted:
                health.tries += 1
            else:
                health.successes -= 1
            health.failures[cause] += 1
            current = self._snapshot
            if current is not None:
                current.tries += 1 if counted else 0
                current.failures += 1
            if health.breaker is not None:
                health.breaker.failed(self.monotonic())
            if waited is not None:
                self._learn(health, endpoint, key, waited)

    def released(self, health: Health) -> None:
        """A try ended with no verdict (cancelled): a half-open breaker admits the next."""
        if health.breaker is not None:
            with self.lock:
                health.breaker.released()

    def _learn(
        self, health: Health, endpoint: Endpoint, key: tuple[str | None, bool], seconds: float
    ) -> None:
        settings = endpoint.adaptive
        if settings is None:
            return
        learnt = health.adaptive.get(key)
        if learnt is None or learnt.settings != settings:
            learnt = health.adaptive[key] = AdaptiveTimeout(settings)
        learnt.add(seconds)

    # -- status -------------------------------------------------------------------

    def status(self) -> RouterStatus:
        """Every endpoint of the current document with what this process saw of it
        (empty before the first document)."""
        try:
            snapshot = self.snapshot()
        except NotConfigured:
            return RouterStatus(endpoints={}, groups={}, document_changes=self._changes)
        now = self.monotonic()
        endpoints: dict[str, EndpointStatus] = {}
        with self.lock:
            for name, endpoint in snapshot.document.endpoints.items():
                health = snapshot.health[name]
                endpoints[name] = _endpoint_status(name, endpoint, health, now)
        groups = {g: dict(w) for g, w in snapshot.document.groups.items()}
        return RouterStatus(endpoints=endpoints, groups=groups, document_changes=self._changes)

    def usage(self) -> CallUsage | None:
        """Tries and failed tries on the current version of the document since it arrived
        (tries that end after a newer version arrived count for the newer one); None before
        the first version, or when the live value is not a document of the service (a
        `Fixed` value). `ConfigClient.report_calls(router)` reports it to the fleet."""
        snapshot = self._snapshot
        document = getattr(self._models, "document", None)
        if snapshot is None or not isinstance(document, Document):
            return None
        if snapshot.version != document.version:
            return None
        with self.lock:
            tries, failures = snapshot.tries, snapshot.failures
        return CallUsage(document.key, document.version, document.rollout, tries, failures)

    def __repr__(self) -> str:
        return f"LiveRouter(changes={self._changes})"


def _version_of(models: LiveValue[ModelEndpoints]) -> int | None:
    """The version of the document a live value holds now (a `Binding` says; None else)."""
    document = getattr(models, "document", None)
    return document.version if isinstance(document, Document) else None


def _endpoint_status(name: str, endpoint: Endpoint, health: Health, now: float) -> EndpointStatus:
    percentiles = health.latency.percentiles(*LATENCY_PERCENTILES)
    p50, p90, p99 = percentiles if percentiles is not None else (None, None, None)
    breaker = health.breaker
    adaptive = {
        f"{task or NO_TASK}/{'stream' if streamed else 'call'}": learnt.value
        for (task, streamed), learnt in sorted(
            health.adaptive.items(), key=lambda item: (item[0][0] or "", item[0][1])
        )
        if learnt.value is not None
    }
    return EndpointStatus(
        name=name,
        base_url=endpoint.base_url,
        model=endpoint.model,
        tries=health.tries,
        successes=health.successes,
        failures=dict(health.failures),
        skipped=health.skipped,
        breaker=breaker.state(now) if breaker is not None else None,
        breaker_retry_in=breaker.retry_in(now) if breaker is not None else 0.0,
        latency=LatencySummary(health.latency.count, p50, p90, p99),
        timeout=endpoint.timeout,
        adaptive_read=adaptive,
    )
