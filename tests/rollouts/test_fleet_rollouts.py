"""Rollouts end to end: real etcd, two service instances, 24 SDK clients in a child process.

Which instances hold the candidate is compared with the contract's rule computed here
(`expected_chosen`), exactly, at every step.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from support import RunningService

from tests.rollouts.helpers import (
    KEY,
    Fleet,
    current,
    expected_chosen,
    limits,
    start_rollout,
)
from tests.sdk.helpers import put, wait_until

pytestmark = pytest.mark.slow

CONVERGE = 10.0
"""Seconds allowed for the fleet to reach a state (pushes take milliseconds)."""
IDENTITIES = {
    f"inst-{n:02d}": {"region": "eu" if n % 3 else "us", "tier": "web"} for n in range(24)
}


def test_steps_choose_by_hash_grow_and_promote(
    two: tuple[RunningService, RunningService], fleets: Callable[..., Fleet]
) -> None:
    a, b = two
    with a.client() as api:
        base = put(api, KEY, limits(5))["version"]
        fleet = fleets([a.url, b.url], a.admin_token, IDENTITIES)
        wait_until(lambda: fleet.on_version(base) == set(IDENTITIES), CONVERGE, "all on base")
        rollout = start_rollout(
            api, kind="RateLimits", spec=limits(6), steps=[25, 50, 100], step_seconds=3
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
