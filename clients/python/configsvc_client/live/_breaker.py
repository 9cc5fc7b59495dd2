"""A circuit breaker for one endpoint: closed, open for a cooldown, then one trial call.

Pure logic over a monotonic clock; the caller holds the router's lock around each use.
"""

from __future__ import annotations

import enum
from collections import deque

from configsvc_schemas import Breaker


class BreakerState(enum.StrEnum):
    """What a breaker lets through.

    - CLOSED: every try goes; failures are counted over the window.
    - OPEN: the endpoint is skipped until the cooldown ends.
    - HALF_OPEN: the cooldown ended; one trial try is let through (others still skip)
      and its outcome closes the breaker again or reopens it for another cooldown.
    """

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """The breaker of one endpoint. `settings` may change between calls (a new document)."""

    __slots__ = ("_failures", "_opened_at", "_trial", "settings")

    def __init__(self, settings: Breaker) -> None:
        self.settings = settings
        self._failures: deque[float] = deque()
        self._opened_at: float | None = None
        self._trial = False

    def state(self, now: float) -> BreakerState:
        """The state at `now` (an open breaker whose cooldown ended is half-open)."""
        if self._opened_at is None:
            return BreakerState.CLOSED
        if now - self._opened_at < self.settings.cooldown:
            return BreakerState.OPEN
        return BreakerState.HALF_OPEN

    def retry_in(self, now: float) -> float:
        """Seconds until an open breaker lets a trial through (0 when it would now)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._opened_at + self.settings.cooldown - now)

    def admit(self, now: float) -> bool:
        """Whether a try may go now; in half-open state the first caller becomes the trial."""
        state = self.state(now)
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._trial:
            self._trial = True
            return True
        return False

    def succeeded(self) -> None:
        """A try answered: close, forgetting past failures."""
        self._opened_at = None
        self._trial = False
        self._failures.clear()

    def failed(self, now: float) -> None:
        """A try failed: a failed trial reopens; `failures` within `window` open."""
        if self._opened_at is not None:
            if self._trial:
                self._trial = False
                self._opened_at = now
            return
        failures = self._failures
        failures.append(now)
        horizon = now - self.settings.window
        while failures and failures[0] <= horizon:
            failures.popleft()
        if len(failures) >= self.settings.failures:
            failures.clear()
            self._opened_at = now

    def released(self) -> None:
        """A trial that ended with no verdict (cancelled): let the next caller try."""
        self._trial = False
