"""Automatic aborts fed by fleet reports (sent here by hand, as SDKs send them): the error
rate of the chosen instances' live helpers, and only theirs."""

from __future__ import annotations

import httpx
from support import RunningService

from tests.fleet.helpers import applied, post, report
from tests.rollouts.helpers import KEY, current, limits, pick, start_rollout
from tests.sdk.helpers import put, wait_until

WAIT = 10.0


def calls(version: int, tries: int, failures: int) -> dict[str, dict[str, int]]:
    return {KEY: {"version": version, "tries": tries, "failures": failures}}


def test_the_error_rate_of_chosen_instances_aborts_the_rollout(
    service: RunningService, api: httpx.Client
) -> None:
    put(api, KEY, limits(5))
    rollout = start_rollout(
        api,
        kind="RateLimits",
        spec=limits(6),
        steps=[50, 100],
        step_seconds=3600,
        abort_on={"error_rate": 0.25, "min_calls": 100},
    )
    version = rollout["version"]
    chosen = [pick(rollout["id"], 50, True, prefix=f"c{n}") for n in range(2)]
    outsider = pick(rollout["id"], 50, False)
    on_candidate = {KEY: applied(version, rollout["revision"])}
    for instance, tries, failures in ((outsider, 500, 500), (chosen[0], 60, 30)):
        body = report(
            instance, labels={}, documents=on_candidate, calls=calls(version, tries, failures)
        )
        assert post(api, body).status_code == 204
    wait_until(lambda: current(api)["fleet"]["tries"] == 60, WAIT, "the report taken")
    status = current(api)
    assert status["state"] == "running"  # 60 tries: fewer than min_calls; outsider not counted
    assert (status["fleet"]["chosen"], status["fleet"]["failures"]) == (1, 30)
    body = report(chosen[1], labels={}, documents=on_candidate, calls=calls(version, 40, 0))
    assert post(api, body).status_code == 204
    wait_until(lambda: current(api)["state"] == "aborted", WAIT, "the automatic abort")
    aborted = current(api)
    assert aborted["reason"] == "error rate 30.0% over 100 tries on version 2 (threshold 25.0%)"
    assert aborted["transitions"][-1]["by"] == "configsvc:rollouts"


def test_reports_of_calls_are_checked_like_the_rest_of_a_report(
    service: RunningService, api: httpx.Client
) -> None:
    bad = report("gw-1", calls={"other/x": {"version": 1, "tries": 1, "failures": 0}})
    answer = post(api, bad)
    assert answer.status_code == 422 and answer.json()["error"]["details"][0]["loc"][0] == "calls"
    negative = report("gw-1", calls={KEY: {"version": 1, "tries": -1, "failures": 0}})
    assert post(api, negative).status_code == 422
