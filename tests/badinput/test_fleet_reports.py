"""Fleet reports are untrusted input: bounded, strict, scoped; a refusal keeps nothing."""

from __future__ import annotations

import json
import time
from typing import Any

from badinput.badtools import request_bytes
from badinput.conftest import Refusals
from configsvc_schemas.wire import MAX_REPORT_BYTES, MAX_REPORT_ERROR_LENGTH

from configsvc.fleet.service import FleetOptions

REPORTS = "/v1/fleet/reports"
MOMENT = "2026-11-22T01:02:03.456Z"


def report(instance: str = "bad-input-1", **changes: Any) -> dict[str, Any]:
    body = {
        "instance": instance,
        "mode": "streaming",
        "namespaces": ["prod"],
        "documents": {"prod/limits": {"version": 2, "revision": 3, "applied_at": MOMENT}},
        "report_interval": 30,
    }
    return {**body, **changes}


def settle(refusals: Refusals) -> None:
    """Let what the service heard reach etcd, then take the store's state afresh."""
    time.sleep(2 * FleetOptions().publish_interval + 0.2)
    refusals.rebase()


def test_bad_reports_are_refused_and_keep_nothing(refusals: Refusals) -> None:
    api = refusals.api
    bad: list[tuple[Any, int]] = [
        ([], 422),
        ({"instance": "x"}, 422),
        (report(instance="../etc"), 422),
        (report(mode="sleeping"), 422),
        (report(report_interval=0.01), 422),
        (report(labels={"k": "v" * 10_000}), 422),
        (
            report(
                documents={"staging/limits": {"version": 1, "revision": 1, "applied_at": MOMENT}}
            ),
            422,
        ),
        (report(namespaces=["prod", "secret-ns"], documents={}), 204),  # the admin may
    ]
    for body, status in bad[:-1]:
        refusals.refused(api.post(REPORTS, json=body), status, body)
    refusals.unchanged()
    reader = api.post(
        "/v1/tokens", json={"name": "prod-only", "role": "reader", "namespaces": ["prod"]}
    ).json()["token"]
    refusals.rebase()
    scoped = report(namespaces=["prod", "secret-ns"], documents={})
    headers = {"Authorization": f"Bearer {reader}"}
    answer = api.post(REPORTS, json=scoped, headers=headers)
    assert refusals.refused(answer, 403) == "forbidden"
    refusals.unchanged()


def test_size_limits_hold_at_the_limit(refusals: Refusals) -> None:
    api = refusals.api
    errors = {
        f"prod/d{n}": {"version": 1, "revision": 1, "error": "e" * MAX_REPORT_ERROR_LENGTH}
        for n in range(300)
    }
    body = report(rejected=errors)
    raw = json.dumps(body).encode()
    assert len(raw) > MAX_REPORT_BYTES
    refusals.refused(api.post(REPORTS, content=raw), 413)
    chunked = api.post(REPORTS, content=iter([raw[:1000], raw[1000:]]))
    refusals.refused(chunked, 413)
    while len(raw) > MAX_REPORT_BYTES:
        errors.popitem()
        raw = json.dumps(report(rejected=errors)).encode()
    assert api.post(REPORTS, content=raw).status_code == 204


def test_headers_query_and_media_type(refusals: Refusals) -> None:
    api = refusals.api
    body = json.dumps(report()).encode()
    refusals.refused(api.post(REPORTS + "?dryrun=true", content=body), 400)
    refusals.refused(api.post(REPORTS, content=body, headers={"Content-Type": "text/plain"}), 400)
    gzip = {"Content-Encoding": "gzip"}
    refusals.refused(api.post(REPORTS, content=body, headers=gzip), 400)
    anonymous = refusals.raw(request_bytes("POST", REPORTS, token=None, body=body))
    assert refusals.refused(anonymous, 401) == "unauthorized"
    assert anonymous.headers.get("www-authenticate") == "Bearer"
    huge_header = {"X-Padding": "p" * 40_000}
    refusals.refused(api.post(REPORTS, content=body, headers=huge_header), 431)
    refusals.refused(api.post(REPORTS, content=b'{"instance": NaN}'), 400)
    refusals.unchanged()


def test_goodbyes_name_valid_instances_of_the_callers_own(refusals: Refusals) -> None:
    api = refusals.api
    for target in ("-x", "a" * 129, "caf%C3%A9", "a%2Fb", "..", "%00"):
        answer = api.delete(f"{REPORTS}/{target}")
        assert answer.status_code in (400, 404, 405), (target, answer.text)  # "..": /v1/fleet
        refusals.refused(answer, answer.status_code, target)
    refusals.refused(api.delete(f"{REPORTS}/never-reported"), 404)
    assert api.post(REPORTS, json=report("mine-1")).status_code == 204
    settle(refusals)
    other = api.post(
        "/v1/tokens", json={"name": "someone", "role": "reader", "namespaces": ["*"]}
    ).json()["token"]
    refusals.rebase()
    headers = {"Authorization": f"Bearer {other}"}
    refusals.refused(api.delete(f"{REPORTS}/mine-1", headers=headers), 403)
    taken = api.post(REPORTS, json=report("mine-1", mode="cached"), headers=headers)
    assert refusals.refused(taken, 409) == "conflict"
    refusals.unchanged()
