"""The fleet routes against a real etcd and two service instances (reports sent by hand)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import jsonschema_rs
from support import RunningService

from tests.fleet.helpers import applied, create_token, document_fleet, items, post, report
from tests.sdk.helpers import wait_until

LIMITS = {"limits": {"chat": {"requests_per_second": 5, "burst": 10}}}
SECRET = "sk-fleet-secret-0123456789"
LAG_MS = 50


def put_limits(client: httpx.Client, ref: str = "prod/limits", rps: float = 5) -> dict[str, Any]:
    spec = {"limits": {"chat": {"requests_per_second": rps, "burst": 10}}}
    response = client.put(f"/v1/configs/{ref}", json={"kind": "RateLimits", "spec": spec})
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


def on(doc: dict[str, Any]) -> dict[str, Any]:
    """An applied entry for `doc` (as put), applied `LAG_MS` after it was written."""
    written = datetime.fromisoformat(doc["updated_at"]) + timedelta(milliseconds=LAG_MS)
    stamp = written.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return applied(doc["version"], doc["revision"], stamp)


def test_a_report_on_one_instance_is_seen_on_the_other(
    two: tuple[RunningService, RunningService],
) -> None:
    a, b = two
    with a.client() as on_a, b.client() as on_b:
        doc = put_limits(on_a)
        body = report("gw-1-1-aa", documents={"prod/limits": on(doc)})
        assert post(on_a, body).status_code == 204
        wait_until(lambda: "gw-1-1-aa" in items(on_b), message="the record on b")
        item = items(on_b)["gw-1-1-aa"]
        assert item["app"] == "gateway" and item["labels"] == {"region": "eu"}
        assert item["mode"] == "streaming" and item["pid"] == 4242
        assert item["documents"]["prod/limits"]["version"] == doc["version"]
        assert item["documents"]["prod/limits"]["lag_ms"] == LAG_MS
        first_seen = item["last_seen"]
        # the same report again, on b: nothing to write, but b heard of it
        time.sleep(0.05)
        assert post(on_b, body).status_code == 204
        wait_until(lambda: items(on_a)["gw-1-1-aa"]["last_seen"] > first_seen, message="heard")
        summary = document_fleet(on_b, "prod/limits")
        assert summary["version"] == doc["version"] and summary["instances"] == 1
        assert summary["on_version"] == {str(doc["version"]): 1}
        assert summary["lag_ms"] == {"p50": LAG_MS, "max": LAG_MS} and summary["rejected"] == []


def test_versions_spread_rejections_and_lag(
    two: tuple[RunningService, RunningService],
) -> None:
    a, b = two
    with a.client() as on_a, b.client() as on_b:
        v1 = put_limits(on_a, rps=1)
        v2 = put_limits(on_a, rps=2)
        for n in range(3):
            assert post(on_a, report(f"new-{n}", documents={"prod/limits": on(v2)})).status_code
        old = report("old-0", documents={"prod/limits": on(v1)})
        assert post(on_b, old).status_code == 204
        refusal = {"version": v2["version"], "revision": v2["revision"], "error": "too fast"}
        stuck = report(
            "stuck-0", documents={"prod/limits": on(v1)}, rejected={"prod/limits": refusal}
        )
        assert post(on_b, stuck).status_code == 204
        wait_until(lambda: document_fleet(on_a, "prod/limits")["instances"] == 5, message="5")
        summary = document_fleet(on_a, "prod/limits")
        assert summary["on_version"] == {"2": 3, "1": 2}
        assert summary["rejected"] == [
            {"instance": "stuck-0", "app": "gateway", "version": 2, "error": "too fast"}
        ]
        assert summary["lag_ms"] == {"p50": LAG_MS, "max": LAG_MS}
        # older versions get their lag from history; a later good version clears the rejection
        assert items(on_a)["old-0"]["documents"]["prod/limits"]["lag_ms"] == LAG_MS
        recovered = report("stuck-0", documents={"prod/limits": on(v2)})
        assert post(on_a, recovered).status_code == 204
        wait_until(lambda: document_fleet(on_b, "prod/limits")["rejected"] == [], message="clear")
        assert document_fleet(on_b, "prod/limits")["on_version"] == {"2": 4, "1": 1}


def test_goodbye_removes_at_once_and_only_the_reporting_token_or_the_admin_may(
    two: tuple[RunningService, RunningService],
) -> None:
    a, b = two
    with a.client() as on_a, b.client() as on_b:
        token = create_token(on_a, "gw", namespaces=["prod"])
        other = create_token(on_a, "other", namespaces=["prod"])
        with a.client(token) as gw, a.client(other) as stranger:
            assert post(gw, report("gw-1-2-bb")).status_code == 204
            assert post(gw, report("gw-1-2-cc")).status_code == 204
            assert stranger.delete("/v1/fleet/reports/gw-1-2-bb").status_code == 403
            # nothing a client sends can make another client's record wrong
            taken = post(stranger, report("gw-1-2-bb", mode="cached"))
            assert taken.status_code == 409, taken.text
            assert gw.delete("/v1/fleet/reports/gw-1-2-bb").status_code == 204
        assert "gw-1-2-bb" not in items(on_a)
        wait_until(lambda: "gw-1-2-bb" not in items(on_b), timeout=2, message="gone on b")
        assert on_b.delete("/v1/fleet/reports/gw-1-2-cc").status_code == 204  # the admin
        assert on_b.delete("/v1/fleet/reports/gw-1-2-cc").status_code == 404
        assert on_b.delete("/v1/fleet/reports/bad%2Fid").status_code in (400, 404)
        assert on_b.delete("/v1/fleet/reports/-bad").status_code == 400


def test_a_silent_instance_leaves_within_three_intervals_plus_two_seconds(
    two: tuple[RunningService, RunningService],
) -> None:
    a, b = two
    interval = 0.5
    with a.client() as on_a, b.client() as on_b:
        body = report("quiet-1", interval=interval)
        steady = report("steady-1", interval=interval)
        posts = 0
        for _ in range(4):  # a few reports spread over both instances, then silence
            for client in (on_a, on_b):
                assert post(client, body).status_code == 204
                assert post(client, steady).status_code == 204
                posts += 1
                time.sleep(interval / 2)
        last = time.monotonic()
        while "quiet-1" in items(on_b):
            assert post(on_a if posts % 2 else on_b, steady).status_code == 204  # still alive
            posts += 1
            assert time.monotonic() - last <= 3 * interval + 2, "still listed"
            time.sleep(0.05)
        gone = time.monotonic() - last
        assert gone >= 2 * interval, f"removed after {gone:.2f} s: too early"
        assert "quiet-1" not in items(on_a)
        assert "steady-1" in items(on_a) and "steady-1" in items(on_b)


def test_a_service_restart_loses_nothing(
    service_factory: Callable[..., RunningService],
) -> None:
    first = service_factory()
    with first.client() as api:
        for n in range(5):
            assert post(api, report(f"kept-{n}")).status_code == 204
    first.stop()
    second = service_factory()
    with second.client() as api:
        assert sorted(items(api)) == [f"kept-{n}" for n in range(5)]


def test_namespace_scoping(two: tuple[RunningService, RunningService]) -> None:
    a, b = two
    with a.client() as admin:
        prod = create_token(admin, "prod-reader", namespaces=["prod"])
        staging = create_token(admin, "staging-reader", namespaces=["staging"])
        both = report("both-1", namespaces=["prod", "staging"], documents={})
        assert post(admin, both).status_code == 204
        assert post(admin, report("prod-1")).status_code == 204
    with b.client(prod) as prod_client, b.client(staging) as staging_client:
        forbidden = post(prod_client, report("sneaky-1", namespaces=["prod", "staging"]))
        assert forbidden.status_code == 403
        assert forbidden.json()["error"]["code"] == "forbidden"
        wait_until(lambda: "prod-1" in items(prod_client), message="prod on b")
        assert "sneaky-1" not in items(prod_client)  # nothing kept
        assert staging_client.get("/v1/fleet", params={"namespace": "prod"}).status_code == 403
        assert staging_client.get("/v1/configs/prod/limits/fleet").status_code == 403
        seen = items(staging_client, "staging")
        assert list(seen) == ["both-1"]
        assert seen["both-1"]["namespaces"] == ["staging"]  # prod is not the caller's to see


def test_rejection_errors_never_show_a_secret_to_a_reader_without_secrets(
    api: httpx.Client,
) -> None:
    spec = {
        "default": "local",
        "endpoints": {"local": {"base_url": "http://h/v1", "model": "m", "api_key": SECRET}},
    }
    doc = api.put("/v1/configs/prod/models", json={"kind": "ModelEndpoints", "spec": spec}).json()
    refusal = {"version": doc["version"], "revision": doc["revision"], "error": f"bad {SECRET}"}
    body = report("leaky-1", documents={}, rejected={"prod/models": refusal})
    assert post(api, body).status_code == 204
    reader = create_token(api, "plain-reader", namespaces=["prod"])
    with httpx.Client(
        base_url=str(api.base_url), headers={"Authorization": f"Bearer {reader}"}
    ) as r:
        listing = r.get("/v1/fleet", params={"namespace": "prod"}).text
        summary = r.get("/v1/configs/prod/models/fleet").text
    assert SECRET not in listing and SECRET not in summary and "bad ****" in summary
    assert SECRET in api.get("/v1/configs/prod/models/fleet").text  # the admin may read it


def test_a_document_that_does_not_exist_has_no_fleet(api: httpx.Client) -> None:
    missing = api.get("/v1/configs/prod/nothing/fleet")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert api.get("/v1/fleet", params={"namespace": "empty"}).json() == {
        "namespace": "empty",
        "items": [],
    }


def test_gauges_and_counters(api: httpx.Client) -> None:
    doc = put_limits(api)
    for n in range(3):
        assert post(api, report(f"m-{n}", documents={"prod/limits": on(doc)})).status_code == 204
    assert post(api, report("m-0", documents={"prod/limits": on(doc)})).status_code == 204
    assert post(api, {"instance": "broken"}).status_code == 422
    text = api.get("/metrics").text
    assert 'configsvc_fleet_instances{app="gateway"} 3.0' in text
    version = doc["version"]
    assert (
        f'configsvc_fleet_document_instances{{name="limits",namespace="prod",version="{version}"}}'
        " 3.0" in text
    )
    assert 'configsvc_fleet_reports_total{result="changed"} 3.0' in text
    assert 'configsvc_fleet_reports_total{result="unchanged"} 1.0' in text
    assert 'configsvc_fleet_reports_total{result="refused"} 1.0' in text
    assert 'configsvc_fleet_store_writes_total{what="record"} 3.0' in text
    assert 'route="/v1/fleet/reports",status="204"' in text


def test_real_answers_match_the_openapi_description(api: httpx.Client) -> None:
    openapi = api.get("/openapi.json").json()
    doc = put_limits(api)
    assert post(api, report("o-1", documents={"prod/limits": on(doc)})).status_code == 204
    refusal = {"version": 1, "revision": 1, "error": "no"}
    assert post(api, report("o-2", rejected={"prod/limits": refusal})).status_code == 204
    answers = {
        ("/v1/fleet", 200): api.get("/v1/fleet", params={"namespace": "prod"}),
        ("/v1/configs/{ns}/{name}/fleet", 200): api.get("/v1/configs/prod/limits/fleet"),
        ("/v1/configs/{ns}/{name}/fleet", 404): api.get("/v1/configs/prod/none/fleet"),
        ("/v1/fleet", 400): api.get("/v1/fleet", params={"namespace": "Bad"}),
    }
    for (path, status), response in answers.items():
        assert response.status_code == status, response.text
        declared = openapi["paths"][path]["get"]["responses"][str(status)]
        schema = {**declared["content"]["application/json"]["schema"], **openapi}
        errors = [
            e.message for e in jsonschema_rs.validator_for(schema).iter_errors(response.json())
        ]
        assert not errors, (path, errors)
    refused = post(api, {"instance": "x"})
    declared = openapi["paths"]["/v1/fleet/reports"]["post"]["responses"]["422"]
    schema = {**declared["content"]["application/json"]["schema"], **openapi}
    assert jsonschema_rs.is_valid(schema, refused.json())


def test_a_revoked_token_stops_reporting_within_moments(
    two: tuple[RunningService, RunningService],
) -> None:
    a, b = two
    with a.client() as admin:
        token = create_token(admin, "soon-revoked", namespaces=["prod"])
    with b.client(token) as reporter:
        assert post(reporter, report("r-1")).status_code == 204
        assert post(reporter, report("r-1")).status_code == 204  # held: no store read
        with a.client() as admin:
            assert admin.delete("/v1/tokens/soon-revoked").status_code == 200
        revoked = time.monotonic()
        wait_until(lambda: post(reporter, report("r-1")).status_code == 401, timeout=2)
        assert time.monotonic() - revoked < 1
        assert post(reporter, report("r-2")).status_code == 401
