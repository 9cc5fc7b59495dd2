"""Reconnect storm: an instance restarted under 1,000 streams that reconnect as the SDK does.

The streams use the SDK's schedule (full jitter: `uniform(0, min(30, 0.5 * 2**attempt))`,
the first retry jittered too). The figures: how the reconnection attempts and the streams
re-established spread over time (per 100 ms), and how long until every stream is back.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from configsvc.rlimits import raise_open_files_limit
from tests.faults._scenario import Scenario
from tests.faults._streams import StreamRecord

STORM_STREAMS = 1000
BIN_SECONDS = 0.1
STORM_WITHIN = 300.0
"""Seconds every stream may take to stream again (the SDK's cap is 30 s per attempt)."""


def histogram(times: list[float], origin: float) -> list[int]:
    """Counts per `BIN_SECONDS` bin of `times` after `origin` (bin 0 starts at origin)."""
    bins = Counter(int((t - origin) / BIN_SECONDS) for t in times if t >= origin)
    return [bins.get(i, 0) for i in range(max(bins, default=-1) + 1)]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_reconnect_storm_after_a_restart_under_1000_streams(
    scenario: Scenario, report: Callable[[dict[str, Any]], None]
) -> None:
    assert raise_open_files_limit() >= 2 * STORM_STREAMS + 200, "RLIMIT_NOFILE too low"
    a, _b = scenario.services
    writer = scenario.start_writer(interval=0.2)
    fleet = scenario.add_streams(STORM_STREAMS, urls=[a.url])  # the SDK's backoff
    writer.wait_acks(10, after=time.monotonic())

    dropped_at = a.terminate()  # graceful: a closes every stream at once
    a.wait_exit()
    a.spawn()
    ready_at = a.wait_ready()
    records: list[StreamRecord] = fleet.wait(
        lambda r: r.streaming and r.established[-1] > dropped_at, STORM_WITHIN
    )
    writer.wait_acks(10, after=time.monotonic())
    figures = scenario.finish(within=STORM_WITHIN)

    dropped = [min(t for t in r.lost if t > dropped_at) for r in records]
    first_retry = [
        min(t for t in r.attempts if t >= lost) - lost
        for r, lost in zip(records, dropped, strict=True)
    ]
    attempts = [t for r in records for t in r.attempts if t > dropped_at]
    back = [min(t for t in r.established if t > dropped_at) for r in records]
    during = [a for a in writer.log.acks if dropped_at <= a.sent <= max(back)]
    latency_ms = {
        f"write_latency_during_storm_p99_ms_{name}": round(
            1000 * percentile([a.acked - a.sent for a in during if a.instance == i], 0.99), 1
        )
        for i, name in enumerate(("restarted", "other"))
    }
    attempts_hist = histogram(attempts, dropped_at)
    back_hist = histogram(back, dropped_at)
    report(
        {
            "streams": len(records),
            "restart_to_ready_s": round(ready_at - dropped_at, 3),
            "streams_closed_within_s": round(max(dropped) - dropped_at, 3),
            "first_retry_delay_p50_s": round(percentile(first_retry, 0.5), 3),
            "first_retry_delay_max_s": round(max(first_retry), 3),
            "first_back_after_drop_s": round(min(back) - dropped_at, 3),
            "all_streaming_after_drop_s": round(max(back) - dropped_at, 3),
            "back_p50_after_first_s": round(percentile(back, 0.5) - min(back), 3),
            "back_p90_after_first_s": round(percentile(back, 0.9) - min(back), 3),
            "all_back_after_first_s": round(max(back) - min(back), 3),
            "attempts": len(attempts),
            "non_200_answers": sum(r.refusals for r in records),
            "attempts_per_stream_max": max(
                sum(t > dropped_at for t in r.attempts) for r in records
            ),
            "attempts_peak_per_100ms": max(attempts_hist),
            "back_peak_per_100ms": max(back_hist),
            **latency_ms,
            "reader_loop_stalls": [(round(t - dropped_at, 2), round(d, 3)) for t, d in fleet.lags],
            "attempts_per_100ms": attempts_hist,
            "back_per_100ms": back_hist,
            **figures,
        }
    )
    assert len(records) == STORM_STREAMS
