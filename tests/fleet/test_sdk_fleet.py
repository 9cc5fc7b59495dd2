"""SDK clients in their own processes, two service instances, a real etcd: the fleet view."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from configsvc_schemas.wire import INSTANCE_HEADER, LABELS_HEADER
from support import RunningService

from configsvc.embedded.process import EtcdProcess
from tests.fleet.helpers import Child, create_token, document_fleet, items
from tests.sdk.helpers import ChaosProxy, ServiceProcess, limits, put, wait_until

INTERVAL = 1.0
"""The children's report interval (seconds)."""
CONVERGE = 10.0
"""Seconds allowed for the fleet to show a change (reports go within a second of it)."""


def test_applied_versions_converge_and_a_rejection_is_listed_with_its_error(
    two: tuple[RunningService, RunningService], children: list[Child]
) -> None:
    a, b = two
    with a.client() as on_a, b.client() as on_b:
        put(on_a, "prod/limits", limits(5))
        urls = ([a.url], [b.url], [b.url, a.url])
        for index, where in enumerate(urls):
            children.append(
                Child(where, a.admin_token, strict=index == 0, labels={"n": str(index)})
            )
        strict = children[0].instance
        wanted = {child.instance for child in children}
        for rps in (6, 7):
            version = put(on_b, "prod/limits", limits(rps))["version"]
            for client in (on_a, on_b):
                wait_until(
                    lambda c=client, v=version: (
                        document_fleet(c, "prod/limits")["on_version"] == {str(v): 3}
                    ),
                    timeout=CONVERGE,
                    message=f"all on version {version}",
                )
        assert set(items(on_a)) == wanted
        assert items(on_b)[children[1].instance]["labels"] == {"n": "1"}
        lag = document_fleet(on_a, "prod/limits")["lag_ms"]
        assert lag is not None and 0 <= lag["p50"] <= lag["max"] < CONVERGE * 1000

        refused = put(on_a, "prod/limits", limits(500))["version"]  # too fast for the strict one

        def strict_refused() -> bool:
            summary = document_fleet(on_b, "prod/limits")
            return summary["on_version"] == {str(refused): 2, str(refused - 1): 1} and any(
                r["instance"] == strict for r in summary["rejected"]
            )

        wait_until(strict_refused, timeout=CONVERGE, message="the rejection listed")
        (rejection,) = document_fleet(on_b, "prod/limits")["rejected"]
        assert rejection["version"] == refused and "at most 100" in rejection["error"]
        item = items(on_a)[strict]
        assert item["rejected"]["prod/limits"]["version"] == refused
        assert item["documents"]["prod/limits"]["version"] == refused - 1

        fixed = put(on_a, "prod/limits", limits(8))["version"]
        wait_until(
            lambda: (
                document_fleet(on_a, "prod/limits")["on_version"] == {str(fixed): 3}
                and document_fleet(on_a, "prod/limits")["rejected"] == []
            ),
            timeout=CONVERGE,
            message="the rejection cleared by a good version",
        )


def test_a_stopped_client_leaves_at_once_and_a_killed_one_within_its_ttl(
    two: tuple[RunningService, RunningService], children: list[Child]
) -> None:
    a, b = two
    with a.client() as on_a, b.client() as on_b:
        put(on_a, "prod/limits", limits(5))
        for urls in ([a.url], [b.url], [a.url, b.url]):
            children.append(Child(urls, a.admin_token, interval=INTERVAL))
        stopped, killed, staying = children
        wait_until(lambda: len(items(on_b)) == 3, timeout=CONVERGE, message="three instances")

        stopped.stop()
        wait_until(lambda: stopped.instance not in items(on_a), timeout=1, message="goodbye")

        died = killed.kill()
        while killed.instance in items(on_b):
            assert time.monotonic() - died <= 3 * INTERVAL + 2, "a killed client stays listed"
            time.sleep(0.05)
        gone = time.monotonic() - died
        assert gone >= INTERVAL, f"removed {gone:.2f} s after the kill: before 2 missed reports"
        assert killed.instance not in items(on_a)
        time.sleep(3 * INTERVAL)
        assert set(items(on_a)) == set(items(on_b)) == {staying.instance}


def test_a_service_instance_restart_does_not_lose_the_fleet(
    etcd: EtcdProcess,
    service_factory: Callable[..., RunningService],
    service_process: ServiceProcess,
    children: list[Child],
) -> None:
    """One instance is SIGKILLed and started again; the other is stopped and replaced:
    at no moment does the surviving instance lose an SDK instance."""
    steady = service_factory()
    with steady.client() as on_steady:
        put(on_steady, "prod/limits", limits(5))
        for urls in ([service_process.url, steady.url], [steady.url, service_process.url]):
            children.append(Child(urls, steady.admin_token, interval=INTERVAL))
        wanted = {child.instance for child in children}
        wait_until(lambda: set(items(on_steady)) == wanted, timeout=CONVERGE, message="both")

        service_process.kill()
        watched_until = time.monotonic() + 4 * INTERVAL
        while time.monotonic() < watched_until:
            assert set(items(on_steady)) == wanted, "an instance was lost"
            time.sleep(0.05)
        service_process.start()
        with service_process.client() as on_restarted:
            assert set(items(on_restarted)) == wanted  # loaded from etcd at start

        version = put(on_steady, "prod/limits", limits(6))["version"]
        wait_until(
            lambda: document_fleet(on_steady, "prod/limits")["on_version"] == {str(version): 2},
            timeout=CONVERGE,
            message="both report the new version after the restart",
        )
    steady.stop()
    replacement = service_factory()
    with replacement.client() as on_replacement:
        assert set(items(on_replacement)) == wanted


def test_namespace_scoping_of_reporting_clients(
    two: tuple[RunningService, RunningService], children: list[Child]
) -> None:
    a, b = two
    with a.client() as admin:
        put(admin, "prod/limits", limits(5))
        put(admin, "staging/limits", limits(1))
        prod_token = create_token(admin, "gw-prod", namespaces=["prod"])
        staging_token = create_token(admin, "ops-staging", namespaces=["staging"])
    children.append(Child([a.url], prod_token))
    children.append(Child([b.url], a.admin_token, namespaces=["prod", "staging"]))
    prod_only, both = children
    with b.client(prod_token) as prod_view, a.client(staging_token) as staging_view:
        wait_until(lambda: len(items(prod_view)) == 2, timeout=CONVERGE, message="prod fleet")
        assert items(prod_view)[prod_only.instance]["namespaces"] == ["prod"]
        staging = items(staging_view, "staging")
        assert list(staging) == [both.instance]
        assert staging[both.instance]["namespaces"] == ["staging"]
        assert list(staging[both.instance]["documents"]) == ["staging/limits"]
        assert staging_view.get("/v1/fleet", params={"namespace": "prod"}).status_code == 403


def test_the_sdk_names_itself_on_its_watch_request_and_reports_off_its_loop(
    sdk_service: RunningService, proxy: ChaosProxy, children: list[Child]
) -> None:
    with sdk_service.client() as admin:
        put(admin, "prod/limits", limits(5))
        child = Child([proxy.url], sdk_service.admin_token, labels={"region": "eu", "tier": "a"})
        children.append(child)
        wait_until(lambda: child.instance in items(admin), timeout=CONVERGE, message="reported")
    (headers,) = proxy.watch_headers
    assert headers[INSTANCE_HEADER.lower()] == child.instance
    assert json.loads(headers[LABELS_HEADER.lower()]) == {"region": "eu", "tier": "a"}
    assert proxy.fleet_requests >= 1
    # the service's fleet route refusing reports does not touch configuration
    proxy.refuse_other = True
    assert child.ask("status")["error"] is None
    child.stop()
