"""Reconnect delays: exponential backoff with full jitter."""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    """Delays before reconnecting: attempt n waits `uniform(0, min(cap, initial * 2**n))`.

    The first retry is jittered too, so that many clients dropped at once by a restart
    do not come back at once. A connection that stayed healthy for `reset_after`
    seconds resets the schedule to its first step.
    """

    def __init__(
        self,
        initial: float,
        cap: float,
        reset_after: float,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float],
    ) -> None:
        self._initial = initial
        self._cap = cap
        self._reset_after = reset_after
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._clock = clock
        self._attempt = 0
        self._connected_at: float | None = None

    @property
    def attempt(self) -> int:
        """Failed attempts since the last reset."""
        return self._attempt

    def bound(self) -> float:
        """The upper bound of the next delay."""
        return min(self._cap, self._initial * 2.0 ** min(self._attempt, 62))

    def next_delay(self) -> float:
        """The delay before the next attempt; counts one more failed attempt."""
        if self._connected_at is not None:
            if self._clock() - self._connected_at >= self._reset_after:
                self._attempt = 0
            self._connected_at = None
        delay = self._rng.uniform(0, self.bound())
        self._attempt += 1
        return delay

    def connected(self) -> None:
        """A connection opened; if it lasts `reset_after`, the schedule starts over."""
        self._connected_at = self._clock()
