"""Rollouts end to end: real etcd, two service instances, 24 SDK clients in a child process.

Which instances hold the candidate is compared with the contract's rule computed here
(`expected_chosen`), exactly, at every step.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
from support import RunningService

from configsvc.embedded.process import EtcdProcess
from tests.rollouts.helpers import (
    KEY,
    Fleet,
    act,
    current,
    expected_chosen,
    limits,
    start_rollout,
)
from tests.sdk.helpers import ServiceProcess, put, wait_until

LONG = 3600
"""A step that does not end during a test."""
STEP = 4.0
"""A step the test watches go by: each state is checked well within it (pushes and polls
take milliseconds to a fraction of a second)."""
CONVERGE = 10.0
"""Seconds allowed for the fleet to reach a state (pushes take milliseconds)."""
IDENTITIES = {
    f"inst-{n:02d}": {"region": "eu" if n % 3 else "us", "tier": "web"} for n in range(24)
}


def test_steps_choose_by_hash_grow_and_promote_by_themselves(
    two: tuple[RunningService, RunningService], fleets: Callable[..., Fleet]
) -> None:
    a, b = two
    with a.client() as api:
        base = put(api, KEY, limits(5))["version"]
        fleet = fleets([a.url, b.url], a.admin_token, IDENTITIES)
        wait_until(lambda: fleet.on_version(base) == set(IDENTITIES), CONVERGE, "all on base")
        rollout = start_rollout(
            api, kind="RateLimits", spec=limits(6), steps=[25, 50, 100], step_seconds=STEP
        )
        candidate = rollout["version"]
        assert candidate == base + 1
        first = expected_chosen(rollout["id"], 25, IDENTITIES)
        assert 0 < len(first) < len(IDENTITIES)
        wait_until(lambda: fleet.on_version(candidate) == first, CONVERGE, "25 % chosen")
        assert api.get(f"/v1/configs/{KEY}").json()["version"] == base
        second = expected_chosen(rollout["id"], 50, IDENTITIES)
        assert first <= second
        wait_until(lambda: fleet.on_version(candidate) == second, CONVERGE, "50 % chosen")
        assert current(api)["percent"] == 50
        wait_until(
            lambda: fleet.on_version(candidate) == set(IDENTITIES), CONVERGE, "all, promoted"
        )
        status = current(api)
        assert status["state"] == "done" and status["percent"] == 100
        assert [t["message"] for t in status["transitions"]] == [
            "started",
            "step 50 %",
            "promoted",
        ]
        assert api.get(f"/v1/configs/{KEY}").json()["version"] == candidate


def test_labels_restrict_the_choice_and_an_abort_brings_every_chosen_one_back(
    two: tuple[RunningService, RunningService], fleets: Callable[..., Fleet]
) -> None:
    a, b = two
    with a.client() as api:
        base = put(api, KEY, limits(5))["version"]
        fleet = fleets([b.url, a.url], a.admin_token, IDENTITIES)
        wait_until(lambda: fleet.on_version(base) == set(IDENTITIES), CONVERGE, "all on base")
        match = {"region": "eu"}
        rollout = start_rollout(
            api,
            kind="RateLimits",
            spec=limits(6),
            steps=[50, 100],
            step_seconds=LONG,
            match={"labels": match},
        )
        chosen = expected_chosen(rollout["id"], 50, IDENTITIES, match)
        eu = {i for i, labels in IDENTITIES.items() if labels["region"] == "eu"}
        assert chosen and chosen < eu
        wait_until(lambda: fleet.on_version(rollout["version"]) == chosen, CONVERGE, "chosen")
        held = fleet.held()
        assert {i for i, h in held.items() if h["rollout"] == rollout["id"]} == chosen
        wait_until(
            lambda: current(api)["fleet"]["on_candidate"] == len(chosen), CONVERGE, "reported"
        )
        status = current(api)["fleet"]
        assert status["chosen"] == len(chosen) and status["instances"] == len(IDENTITIES)
        assert status["on_version"] == {
            str(rollout["version"]): len(chosen),
            str(base): len(IDENTITIES) - len(chosen),
        }
        act(api, "abort", reason="by hand")
        wait_until(lambda: fleet.on_version(base) == set(IDENTITIES), CONVERGE, "all back")
        assert all(h["rollout"] is None for h in fleet.held().values())


def test_rejections_by_chosen_instances_abort_the_rollout_by_itself(
    two: tuple[RunningService, RunningService], fleets: Callable[..., Fleet]
) -> None:
    a, b = two
    with a.client() as api:
        base = put(api, KEY, limits(5))["version"]
        # every instance refuses more than 100 requests per second
        fleet = fleets([a.url, b.url], a.admin_token, IDENTITIES, strict=list(IDENTITIES))
        wait_until(lambda: fleet.on_version(base) == set(IDENTITIES), CONVERGE, "all on base")
        rollout = start_rollout(
            api,
            kind="RateLimits",
            spec=limits(500),
            steps=[25, 100],
            step_seconds=LONG,
            abort_on={"rejected": 2},
        )
        chosen = expected_chosen(rollout["id"], 25, IDENTITIES)
        assert len(chosen) >= 2
        wait_until(lambda: current(api)["state"] == "aborted", CONVERGE, "the automatic abort")
        status = current(api)
        assert status["reason"].startswith(f"{len(chosen)} chosen instances rejected version")
        last = status["transitions"][-1]
        assert (
            last["by"] == "configsvc:rollouts"
            and last["message"] == "aborted: " + (status["reason"])
        )
        rows = api.get(f"/v1/configs/{KEY}/history").json()["items"]
        assert [r["message"] for r in rows[:2]] == [last["message"], "started"]
        assert fleet.on_version(base) == set(IDENTITIES)  # none applied the candidate
        wait_until(
            lambda: all(h["error"] is None for h in fleet.held().values()),
            CONVERGE,
            "the rejections cleared once the candidate was withdrawn",
        )


def test_polling_instances_get_their_variant_and_go_back_on_abort(
    service: RunningService, fleets: Callable[..., Fleet]
) -> None:
    with service.client() as api:
        base = put(api, KEY, limits(5))["version"]
        fleet = fleets([service.url], service.admin_token, IDENTITIES, polling=True)
        wait_until(lambda: fleet.on_version(base) == set(IDENTITIES), CONVERGE, "all on base")
        assert {h["mode"] for h in fleet.held().values()} == {"polling"}
        rollout = start_rollout(
            api, kind="RateLimits", spec=limits(6), steps=[25, 50, 100], step_seconds=STEP
        )
        candidate = rollout["version"]
        first = expected_chosen(rollout["id"], 25, IDENTITIES)
        wait_until(lambda: fleet.on_version(candidate) == first, CONVERGE, "25 % chosen")
        second = expected_chosen(rollout["id"], 50, IDENTITIES)
        wait_until(lambda: fleet.on_version(candidate) == second, CONVERGE, "50 % chosen")
        act(api, "abort")
        wait_until(lambda: fleet.on_version(base) == set(IDENTITIES), CONVERGE, "all back")
        assert {h["mode"] for h in fleet.held().values()} == {"polling"}


def test_the_choice_holds_across_a_move_and_a_restart_mid_rollout(
    etcd: EtcdProcess, fleets: Callable[..., Fleet]
) -> None:
    """Pauses hold each step while the clients move: from a (killed) to b, whose scheduler
    takes the next step, then back to a restarted a (nothing in memory), which takes the
    one after."""
    a, b = ServiceProcess(etcd), ServiceProcess(etcd)
    a.start()
    b.start()
    try:
        with a.client() as on_a:
            base = put(on_a, KEY, limits(5))["version"]
        fleet = fleets([a.url, b.url], a.admin_token, IDENTITIES)
        wait_until(lambda: fleet.on_version(base) == set(IDENTITIES), CONVERGE, "all on base")
        wait_until(lambda: _streams(a) == len(IDENTITIES), CONVERGE, "all on a")
        with a.client() as on_a:
            rollout = start_rollout(
                on_a, kind="RateLimits", spec=limits(6), steps=[20, 40, 60, 100], step_seconds=STEP
            )
            act(on_a, "pause")
        candidate = rollout["version"]
        chosen = {p: expected_chosen(rollout["id"], p, IDENTITIES) for p in (20, 40, 60)}
        wait_until(lambda: fleet.on_version(candidate) == chosen[20], CONVERGE, "20 %")

        a.kill()
        wait_until(lambda: _streams(b) == len(IDENTITIES), CONVERGE, "all moved to b")
        assert fleet.on_version(candidate) == chosen[20]
        with b.client() as on_b:
            act(on_b, "resume")
            wait_until(lambda: current(on_b)["percent"] == 40, CONVERGE, "the step, by b")
            act(on_b, "pause")
        wait_until(lambda: fleet.on_version(candidate) == chosen[40], CONVERGE, "40 % from b")

        a.start()
        b.kill()
        wait_until(lambda: _streams(a) == len(IDENTITIES), CONVERGE, "all back on a")
        assert fleet.on_version(candidate) == chosen[40]
        with a.client() as on_a:
            act(on_a, "resume")
            wait_until(lambda: current(on_a)["percent"] == 60, CONVERGE, "the step, by a")
            act(on_a, "pause")
            wait_until(lambda: fleet.on_version(candidate) == chosen[60], CONVERGE, "60 %")
            act(on_a, "promote")
            wait_until(lambda: fleet.on_version(candidate) == set(IDENTITIES), CONVERGE, "all")
            messages = [t["message"] for t in current(on_a)["transitions"]]
        assert messages == [
            "started", "paused", "resumed", "step 40 %", "paused",
            "resumed", "step 60 %", "paused", "promoted",
        ]  # fmt: skip
    finally:
        a.kill()
        b.kill()


def _streams(service: ServiceProcess) -> int:
    """The watch streams open on `service` (0 when it does not answer)."""
    try:
        with service.client() as api:
            text = api.get("/metrics").text
    except httpx.HTTPError:
        return 0
    for line in text.splitlines():
        if line.startswith("configsvc_watch_subscribers "):
            return int(float(line.split()[1]))
    return 0
