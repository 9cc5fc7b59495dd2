"""Rollouts over the REST API, against a real service and etcd: validation, the 409 on plain
writes, every transition in the history and the audit log, numbers never reused."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from support import RunningService

from tests.rollouts.helpers import KEY, act, current, limits, start_rollout
from tests.sdk.helpers import put

LONG = 3600
"""A step that will not end during a test."""


def plan(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "RateLimits",
        "spec": limits(6),
        "message": "six per second",
        "steps": [10, 50, 100],
        "step_seconds": LONG,
    }
    body.update(changes)
    return body


def refused(api: httpx.Client, status: int, body: dict[str, Any], key: str = KEY) -> Any:
    response = api.post(f"/v1/configs/{key}/rollouts", json=body)
    assert response.status_code == status, response.text
    return response.json()["error"]


def history(api: httpx.Client, key: str = KEY) -> list[dict[str, Any]]:
    response = api.get(f"/v1/configs/{key}/history")
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_a_rollout_is_validated_like_a_write_and_a_refusal_changes_nothing(
    api: httpx.Client,
) -> None:
    assert refused(api, 404, plan())["code"] == "not_found"  # no document to roll out
    put(api, KEY, limits(5))
    for steps, problem in (
        ([100], "at least 2"),
        ([50, 10, 100], "increase"),
        ([10, 50], "last step must be 100"),
        ([0, 100], "greater than 0"),
        ([10, 150], "less than or equal to 100"),
    ):
        error = refused(api, 422, plan(steps=steps))
        assert error["details"][0]["loc"][0] == "steps", error
        assert problem in error["details"][0]["msg"], error
    assert refused(api, 422, plan(step_seconds=0))["details"][0]["loc"] == ["step_seconds"]
    error = refused(api, 422, plan(spec={"limits": {"chat": {"requests_per_second": -1}}}))
    assert error["details"][0]["loc"][0] == "spec"
    assert refused(api, 422, plan(kind="NoSuchKind"))["details"][0]["loc"] == ["kind"]
    assert refused(api, 422, plan(match={"labels": {"bad key!": "x"}}))["code"] == (
        "validation_failed"
    )
    assert refused(api, 422, plan(abort_on={"rejected": 0}))["code"] == "validation_failed"
    assert refused(api, 422, plan(surprise=1))["code"] == "validation_failed"
    assert refused(api, 400, plan(name="other"))["code"] == "bad_request"
    assert refused(api, 409, plan(spec=limits(5)))["details"][0]["loc"] == ["spec"]  # equal
    assert api.get(f"/v1/configs/{KEY}/rollouts/current").status_code == 404
    assert [row["version"] for row in history(api)] == [1]


def test_plain_writes_are_refused_while_a_rollout_runs_or_is_paused(api: httpx.Client) -> None:
    base = put(api, KEY, limits(5))["version"]
    rollout = start_rollout(api, **plan())
    assert rollout["state"] == "running" and rollout["version"] == base + 1
    assert rollout["step"] == 1 and rollout["percent"] == 10
    document = f"/v1/configs/{KEY}"
    for state in ("running", "paused"):
        body = {"kind": "RateLimits", "spec": limits(7)}
        unchanged = api.put(document, json={"kind": "RateLimits", "spec": limits(5)})
        assert unchanged.status_code == 200 and unchanged.json()["changed"] is False
        for response in (
            api.put(document, json=body),
            api.put(document, json=body, params={"dry_run": "true"}),
            api.delete(document),
            api.post(f"{document}/rollback", json={"to_version": base}),
            api.post(f"{document}/rollouts", json=plan(spec=limits(8))),
        ):
            assert response.status_code == 409, (state, response.text)
            assert state in response.json()["error"]["message"]
        put(api, "staging/limits", limits(9))
        promoted = api.post("/v1/promote", json={"from": "staging", "to": "prod"})
        assert promoted.status_code == 200, promoted.text
        (item,) = [i for i in promoted.json()["items"] if i["name"] == "limits"]
        assert item["result"] == "conflict" and state in item["error"]["message"], item
        if state == "running":
            assert act(api, "pause", reason="waiting for the dashboards")["state"] == "paused"
    assert api.get(document).json()["version"] == base
    act(api, "resume")
    aborted = act(api, "abort", reason="the p99 went up")
    assert aborted["state"] == "aborted" and aborted["percent"] == 10
    assert aborted["reason"] == "the p99 went up"
    assert api.post(f"{document}/rollouts/current/resume").status_code == 409
    after = put(api, KEY, limits(7))
    assert after["version"] == base + 2  # the candidate's number is not given again
    assert [(row["version"], row["action"], row["message"]) for row in history(api)] == [
        (base + 2, "put", None),
        (base + 1, "rollout", "aborted: the p99 went up"),
        (base + 1, "rollout", "resumed"),
        (base + 1, "rollout", "paused: waiting for the dashboards"),
        (base + 1, "rollout", "started"),
        (base, "put", None),
    ]
    candidate = api.get(f"{document}/versions/{base + 1}").json()
    assert candidate["action"] == "rollout" and candidate["spec"] == limits(6)
    assert candidate["message"] == "six per second"


def test_promote_makes_the_candidate_current_and_every_transition_is_kept(
    api: httpx.Client,
) -> None:
    base = put(api, KEY, limits(5))["version"]
    started = start_rollout(api, **plan())
    promoted = act(api, "promote")
    assert promoted["state"] == "done" and promoted["percent"] == 100
    assert promoted["revision"] > started["revision"]
    assert api.post(f"/v1/configs/{KEY}/rollouts/current/promote").status_code == 409
    document = api.get(f"/v1/configs/{KEY}").json()
    assert document["version"] == base + 1 and document["spec"] == limits(6)
    assert document["message"] == "six per second" and document["updated_by"] == "admin"
    rows = history(api)
    assert [(row["version"], row["message"]) for row in rows[:2]] == [
        (base + 1, "promoted"),
        (base + 1, "started"),
    ]
    assert rows[0]["revision"] == promoted["revision"] == document["revision"]
    assert rows[1]["revision"] == started["revision"]
    assert (
        history(api)[:1]
        == api.get(f"/v1/configs/{KEY}/history", params={"limit": 1}).json()["items"]
    )
    audit = api.get("/v1/audit").json()["items"]
    logged = [(r["action"], r["version"]) for r in audit if r["target"] == KEY]
    assert logged[-2:] == [("rollout.started", base + 1), ("rollout.promoted", base + 1)]
    put(api, KEY, limits(7))  # writes are open again
    assert current(api)["state"] == "done"  # the latest rollout, whatever its state


def test_readers_see_rollouts_and_writers_act_on_them(
    service: RunningService, api: httpx.Client
) -> None:
    put(api, KEY, limits(5))
    tokens = {}
    for role in ("reader", "writer"):
        body = {"name": role, "role": role, "namespaces": ["prod"]}
        tokens[role] = api.post("/v1/tokens", json=body).json()["token"]
    with service.client(tokens["reader"]) as reader, service.client(tokens["writer"]) as writer:
        assert reader.post(f"/v1/configs/{KEY}/rollouts", json=plan()).status_code == 403
        start_rollout(writer, **plan())
        assert reader.get(f"/v1/configs/{KEY}/rollouts/current").status_code == 200
        assert reader.post(f"/v1/configs/{KEY}/rollouts/current/abort").status_code == 403
        assert act(writer, "abort")["reason"] == "by writer"
    with service.client(tokens["reader"]) as reader:
        put(api, "other/limits", limits(5))
        assert reader.get("/v1/configs/other/limits/rollouts/current").status_code == 403


@pytest.mark.parametrize("action", ["promote", "pause", "resume", "abort"])
def test_an_action_on_a_document_that_never_had_a_rollout_is_404(
    api: httpx.Client, action: str
) -> None:
    put(api, KEY, limits(5))
    response = api.post(f"/v1/configs/{KEY}/rollouts/current/{action}")
    assert response.status_code == 404, response.text


def test_a_dry_run_checks_everything_and_starts_nothing_and_if_match_guards_the_start(
    api: httpx.Client,
) -> None:
    current = put(api, KEY, limits(5))
    rollouts = f"/v1/configs/{KEY}/rollouts"
    dry = api.post(rollouts, json=plan(), params={"dry_run": "true"})
    assert dry.status_code == 200, dry.text
    would = dry.json()
    assert would["dry_run"] is True and would["revision"] is None
    assert would["state"] == "running" and would["version"] == current["version"] + 1
    assert [t["revision"] for t in would["transitions"]] == [None]
    # refusals are the same as a real start's
    invalid = plan(spec={"limits": {"chat": {"requests_per_second": -1}}})
    assert api.post(rollouts, json=invalid, params={"dry_run": "true"}).status_code == 422
    equal = api.post(rollouts, json=plan(spec=limits(5)), params={"dry_run": "true"})
    assert equal.status_code == 409
    # nothing was written: no rollout, no version number taken, no history row
    assert api.get(f"{rollouts}/current").status_code == 404
    assert [row["version"] for row in history(api)] == [current["version"]]
    # If-Match: the start only over the revision the writer reviewed
    stale = api.post(rollouts, json=plan(), headers={"If-Match": f'"{current["revision"] - 1}"'})
    assert stale.status_code == 412, stale.text
    assert api.get(f"{rollouts}/current").status_code == 404
    started = api.post(rollouts, json=plan(), headers={"If-Match": f'"{current["revision"]}"'})
    assert started.status_code == 201, started.text
    assert started.json()["version"] == current["version"] + 1  # the dry run took no number
