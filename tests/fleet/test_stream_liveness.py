"""An open watch stream stands for its SDK instance's periodic fleet report (real etcd, two
service instances): the service notes the instance heard once per its interval while the
stream is open, and only for the token its record was reported with."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import httpx
from configsvc_schemas.wire import (
    INSTANCE_HEADER,
    STREAM_LIVENESS,
    STREAM_LIVENESS_HEADER,
    VOUCHED_REPORTS_EVERY,
)
from support import RunningService

from tests.fleet.helpers import Child, create_token, items, post, report
from tests.sdk.helpers import ChaosProxy, limits, put, wait_until

INTERVAL = 0.5
SILENCE = 3 * INTERVAL + 2.0
"""Within this, an instance nobody vouches for leaves the fleet (3 intervals + grace)."""


@contextlib.contextmanager
def watch(service: RunningService, token: str, instance: str) -> Iterator[httpx.Response]:
    """A watch stream of `prod`, named `instance`, held open (not read) while in the block."""
    headers = {"Authorization": f"Bearer {token}", INSTANCE_HEADER: instance}
    with (
        httpx.Client(base_url=service.url, timeout=10) as client,
        client.stream("GET", "/v1/watch", params={"namespace": "prod"}, headers=headers) as r,
    ):
        assert r.status_code == 200
        yield r


def streamed_count(client: httpx.Client) -> float:
    text = client.get("/metrics").text
    for line in text.splitlines():
        if line.startswith('configsvc_fleet_reports_total{result="streamed"}'):
            return float(line.split()[-1])
    return 0.0


def test_an_open_stream_keeps_its_instance_listed_and_only_with_the_reporting_token(
    two: tuple[RunningService, RunningService],
) -> None:
    a, b = two
    with a.client() as admin_a, b.client() as admin_b, contextlib.ExitStack() as streams:
        gateway = create_token(admin_a, "gateway", namespaces=["prod"])
        other = create_token(admin_a, "other", namespaces=["prod"])
        with b.client(gateway) as reporter:
            for instance in ("held-1", "held-2", "borrowed-1", "unnamed-1"):
                assert post(reporter, report(instance, interval=INTERVAL)).status_code == 204
        reported = time.monotonic()
        first_seen = items(admin_b)["held-1"]["last_seen"]
        # streams on a: two with the reporting token; one with another token, naming an
        # instance it did not report; unnamed-1 has none. No report comes from now on.
        held = streams.enter_context(watch(a, gateway, "held-1"))
        assert held.headers[STREAM_LIVENESS_HEADER] == STREAM_LIVENESS
        closing = contextlib.ExitStack()
        closing.enter_context(watch(a, gateway, "held-2"))
        with httpx.stream(
            "GET",
            f"{a.url}/v1/watch",
            params={"namespace": "prod"},
            headers={"Authorization": f"Bearer {gateway}"},
        ) as unnamed:
            assert unnamed.status_code == 200 and STREAM_LIVENESS_HEADER not in unnamed.headers
        streams.enter_context(watch(a, other, "borrowed-1"))
        wait_until(
            lambda: not {"borrowed-1", "unnamed-1"} & set(items(admin_b)),
            timeout=SILENCE + 1,
            message="the instances no stream of their token vouches for to leave",
        )
        left_after = time.monotonic() - reported
        assert left_after >= 2 * INTERVAL, f"removed after {left_after:.2f} s: too early"
        time.sleep(SILENCE - left_after + INTERVAL)
        kept = items(admin_b)
        assert {"held-1", "held-2"} <= set(kept), "open streams should stand for reports"
        assert kept["held-1"]["last_seen"] > first_seen
        assert streamed_count(admin_a) >= 3  # about one a second each (the check's pace)
        assert streamed_count(admin_b) == 0  # b holds no stream
        # a stream that ends stops standing for its instance
        closing.close()
        closed = time.monotonic()
        wait_until(
            lambda: "held-2" not in items(admin_b),
            timeout=SILENCE + 1,
            message="held-2 to leave once its stream closed",
        )
        assert time.monotonic() - closed >= 2 * INTERVAL
        # a stream stands for its instance only while a report of its own comes every 10
        # intervals (a frozen process keeps its connection open): held-1 leaves too
        vouched = (VOUCHED_REPORTS_EVERY + 1) * INTERVAL
        wait_until(
            lambda: "held-1" not in items(admin_b),
            timeout=vouched + SILENCE + 1 - (time.monotonic() - reported),
            message="held-1 to leave with no report of its own for 11 intervals",
        )
        assert time.monotonic() - reported >= vouched


def test_a_streaming_sdk_sends_no_periodic_report_until_its_stream_is_gone(
    sdk_service: RunningService, proxy: ChaosProxy, children: list[Child]
) -> None:
    interval = INTERVAL
    with sdk_service.client() as admin:
        put(admin, "prod/limits", limits(5))
        child = Child([proxy.url], sdk_service.admin_token, interval=interval)
        children.append(child)
        wait_until(lambda: child.instance in items(admin), timeout=10, message="reported")
        time.sleep(interval)  # a report that was already due may still go
        sent = proxy.fleet_requests
        seen = items(admin)[child.instance]["last_seen"]
        time.sleep(5 * interval)
        assert proxy.fleet_requests == sent, "unchanged reports went while the stream was open"
        listed: dict[str, Any] = items(admin)[child.instance]
        assert listed["mode"] == "streaming" and listed["last_seen"] > seen
        # a change is still reported at once
        put(admin, "prod/limits", limits(6))
        wait_until(
            lambda: items(admin)[child.instance]["documents"]["prod/limits"]["version"] == 2,
            timeout=5,
            message="the change reported",
        )
        # no stream any more: the client polls and reports every interval again
        proxy.refuse_watch = True
        proxy.cut()
        wait_until(
            lambda: items(admin)[child.instance]["mode"] == "polling",
            timeout=10,
            message="the client reporting that it polls",
        )
        polled = proxy.fleet_requests
        time.sleep(3.5 * interval)
        assert proxy.fleet_requests >= polled + 3
        assert child.instance in items(admin)
