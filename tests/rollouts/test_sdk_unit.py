"""The SDK's side of rollouts, with no service: the held version sent again calls no one,
a live router counts its tries per version, and reports carry them for candidates only."""

from __future__ import annotations

import json
from typing import Any

import httpx
from configsvc_client import CallUsage, Change, Document, Mode, ReportOptions, SourceState, Update
from configsvc_client._fleet import FleetReporter, candidate_calls
from configsvc_client._identity import Identity
from configsvc_client._state import ConfigState
from configsvc_client._status import ClientStatus
from configsvc_client.kinds import ModelEndpoints, RateLimits
from configsvc_client.live import LiveRouter

ROLLOUT = "0123456789abcdef"


def limits_doc(version: int, revision: int, rps: float, rollout: str | None = None) -> Document:
    spec = {"limits": {"chat": {"requests_per_second": rps, "burst": 1}}}
    return Document("prod", "limits", "RateLimits", spec, version, revision, rollout=rollout)


def models_doc(version: int, revision: int, rollout: str | None = None) -> Document:
    endpoint = {"base_url": "http://h/v1", "model": "m"}
    spec = {"default": "a", "endpoints": {"a": endpoint}}
    return Document("prod", "models", "ModelEndpoints", spec, version, revision, rollout=rollout)


def put(state: ConfigState, document: Document) -> int:
    """Apply a put; returns how many callbacks it ran."""
    notes = state.apply(Update(SourceState.VALID, changes=(Change.put(document),)))
    for note in notes:
        note()
    return len(notes)


def test_the_held_version_again_calls_no_one_and_clears_a_rejection() -> None:
    state = ConfigState(["prod"])
    seen: list[Any] = []
    binding = state.bind("prod/limits", RateLimits)
    binding.on_change(lambda old, new: seen.append(new))
    assert put(state, limits_doc(1, 10, 5)) == 1
    assert put(state, limits_doc(2, 20, 6, ROLLOUT)) == 1  # the candidate
    assert put(state, limits_doc(2, 30, 6)) == 0  # promoted: the same version again
    held = state.get("prod/limits")
    assert held is not None and (held.revision, held.rollout) == (30, None)
    assert binding.document is not None and binding.document.revision == 30
    assert len(seen) == 2

    strict = ConfigState(["prod"])
    refusing = strict.bind("prod/limits", RateLimits)
    put(strict, limits_doc(1, 10, 5))
    assert put(strict, limits_doc(2, 20, -1, ROLLOUT)) == 0  # rejected by the model
    assert refusing.error is not None and strict.rejections()
    assert put(strict, limits_doc(1, 30, 5)) == 0  # the rollout aborted: base again
    assert refusing.error is None and not strict.rejections()


def test_a_router_counts_tries_on_the_version_it_follows() -> None:
    state = ConfigState(["prod"])
    binding = state.bind("prod/models", ModelEndpoints)
    router = LiveRouter(binding)
    assert router.usage() is None
    put(state, models_doc(1, 10))
    snapshot = router.snapshot()
    health, endpoint = snapshot.health["a"], snapshot.document.endpoints["a"]
    router.succeeded(health, endpoint, (None, False), 0.1)
    usage = router.usage()
    assert usage == CallUsage("prod/models", 1, None, 1, 0)
    put(state, models_doc(2, 20, ROLLOUT))
    assert router.usage() is None  # the new version is not used yet
    snapshot = router.snapshot()
    health, endpoint = snapshot.health["a"], snapshot.document.endpoints["a"]
    router.failed(health, endpoint, (None, False), "timeout")
    router.succeeded(health, endpoint, (None, False), 0.1)
    router.failed(health, endpoint, (None, True), "idle", counted=False)  # a broken stream
    assert router.usage() == CallUsage("prod/models", 2, ROLLOUT, 2, 2)
    put(state, models_doc(2, 30))  # promoted
    assert router.usage() == CallUsage("prod/models", 2, None, 2, 2)


def test_reports_carry_the_tries_on_candidates_only() -> None:
    usages = [
        CallUsage("prod/models", 2, ROLLOUT, 10, 3),
        CallUsage("prod/models", 2, ROLLOUT, 5, 1),
        CallUsage("prod/other", 4, None, 100, 100),
    ]
    assert candidate_calls(usages) == {"prod/models": {"version": 2, "tries": 15, "failures": 4}}
    state = ConfigState(["prod"])
    put(state, models_doc(2, 20, ROLLOUT))

    def status() -> ClientStatus:
        return ClientStatus(Mode.STREAMING, state.revision, 0.0, None)

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(204)

    http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    identity = Identity("host-1-abcd0123", None, {})
    options = ReportOptions()
    with_calls = FleetReporter(
        http, ["http://x"], None, identity, ["prod"], options, state, status, calls=lambda: usages
    )
    body = json.loads(with_calls.body() or b"")
    assert body["calls"] == {"prod/models": {"version": 2, "tries": 15, "failures": 4}}
    assert body["documents"]["prod/models"]["version"] == 2
    without = FleetReporter(http, ["http://x"], None, identity, ["prod"], options, state, status)
    assert "calls" not in json.loads(without.body() or b"")
