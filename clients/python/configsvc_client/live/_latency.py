"""Observed latencies: a bounded window of the most recent samples and its percentiles."""

from __future__ import annotations

import math
from collections import deque

from configsvc_schemas import Adaptive

LATENCY_WINDOW = 1000
"""Latencies kept per endpoint for its status (the most recent ones)."""


def percentile(ordered: list[float], pct: float) -> float:
    """The `pct` percentile (0-100, nearest rank) of an ascending, non-empty list."""
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[rank - 1]


class LatencyWindow:
    """The last `size` latencies (seconds). Adding is O(1); percentiles sort on demand."""

    __slots__ = ("_samples", "count")

    def __init__(self, size: int) -> None:
        self._samples: deque[float] = deque(maxlen=size)
        self.count = 0
        """Samples ever added (the window holds the last `size`)."""

    def add(self, seconds: float) -> None:
        self._samples.append(seconds)
        self.count += 1

    def __len__(self) -> int:
        return len(self._samples)

    def percentiles(self, *pcts: float) -> tuple[float, ...] | None:
        """The given percentiles of the window, or None while it is empty."""
        if not self._samples:
            return None
        ordered = sorted(self._samples)
        return tuple(percentile(ordered, pct) for pct in pcts)


class AdaptiveTimeout:
    """A read timeout learnt from latencies: clamp(multiplier x percentile, min, max).

    Holds the last `samples` latencies of one endpoint, task class and call mode; answers
    None until `samples` were seen. A try that timed out adds the time it waited, so the
    timeout grows back when the model slows down rather than failing forever.
    """

    __slots__ = ("_value", "_window", "settings")

    def __init__(self, settings: Adaptive) -> None:
        self.settings = settings
        self._window = LatencyWindow(settings.samples)
        self._value: float | None = None

    def add(self, seconds: float) -> None:
        self._window.add(seconds)
        s = self.settings
        if len(self._window) >= s.samples:
            observed = self._window.percentiles(s.percentile)
            assert observed is not None
            self._value = min(s.max, max(s.min, s.multiplier * observed[0]))

    @property
    def value(self) -> float | None:
        """The learnt read timeout, or None before `samples` latencies were seen."""
        return self._value
