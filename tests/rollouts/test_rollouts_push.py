"""What each SDK instance is sent while a rollout runs: on its watch stream (live, resumed
from the ring, resumed on a fresh service instance) and in its polls, with an ETag that
follows what it gets. Which instances are chosen is computed here from the contract's rule.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from support import RunningService

from tests.rollouts.helpers import (
    KEY,
    Stream,
    act,
    expected_chosen,
    identity_headers,
    limits,
    start_rollout,
)
from tests.sdk.helpers import put

LONG = 3600
QUIET = 0.3
"""Seconds a stream must stay silent to show it was sent nothing."""
IDENTITIES = {f"pod-{n}": {"region": "eu" if n % 2 else "us"} for n in range(20)}
"""20 instances: at 50 % the chance that the rule chooses none or all of them is 2e-6."""


def plan(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "RateLimits",
        "spec": limits(6),
        "steps": [50, 100],
        "step_seconds": LONG,
    }
    body.update(changes)
    return body


@contextmanager
def streams(
    service: RunningService, last_event_id: int | None = None
) -> Iterator[dict[str | None, Stream]]:
    """A stream per identity, and one that names no instance (key None)."""
    opened: dict[str | None, Stream] = {}
    try:
        for instance, labels in IDENTITIES.items():
            headers = identity_headers(instance, labels)
            opened[instance] = Stream(
                service.url, service.admin_token, "prod", headers, last_event_id
            )
        opened[None] = Stream(service.url, service.admin_token, "prod", None, last_event_id)
        yield opened
    finally:
        for stream in opened.values():
            stream.close()


def first_events(opened: dict[str | None, Stream]) -> None:
    for stream in opened.values():
        event = stream.next()
        assert event is not None and event.event == "snapshot"


def expect_moves(
    opened: dict[str | None, Stream], moved: set[str], check: Callable[[Any], None]
) -> None:
    """The streams of `moved` are sent one put that passes `check`; the others nothing."""
    for instance in moved:
        event = opened[instance].next()
        assert event is not None and event.event == "put", instance
        check(event)
    time.sleep(QUIET)
    for instance, stream in opened.items():
        assert stream.quiet(0), instance


def expect_put_of(opened: dict[str | None, Stream], name: str, revision: int) -> None:
    for instance, stream in opened.items():
        event = stream.next()
        assert event is not None, instance
        assert (event.event, event.data["name"], event.id) == ("put", name, revision), instance


def test_streams_get_their_variant_when_a_rollout_starts_and_aborts(
    service: RunningService, api: httpx.Client
) -> None:
    base = put(api, KEY, limits(5))
    with streams(service) as opened:
        first_events(opened)
        rollout = start_rollout(api, **plan(match={"labels": {"region": "eu"}}))
        chosen = expected_chosen(rollout["id"], 50, IDENTITIES, {"region": "eu"})
        assert chosen and chosen != {i for i, lab in IDENTITIES.items() if lab["region"] == "eu"}

        def is_candidate(event: Any) -> None:
            assert event.id == rollout["revision"] == event.data["revision"]
            assert event.data["version"] == rollout["version"]
            assert event.data["spec"] == limits(6) and event.data["rollout"] == rollout["id"]

        expect_moves(opened, chosen, is_candidate)
        other = put(api, "prod/other", limits(1))
        expect_put_of(opened, "other", other["revision"])
        aborted = act(api, "abort", reason="test")

        def is_base(event: Any) -> None:
            assert event.id == aborted["revision"] == event.data["revision"]
            assert event.data["version"] == base["version"] and "rollout" not in event.data
            assert event.data["spec"] == limits(5)

        expect_moves(opened, chosen, is_base)
        again = put(api, "prod/other", limits(2))
        expect_put_of(opened, "other", again["revision"])


def test_a_promotion_is_one_put_for_every_stream(
    service: RunningService, api: httpx.Client
) -> None:
    put(api, KEY, limits(5))
    with streams(service) as opened:
        first_events(opened)
        rollout = start_rollout(api, **plan())
        chosen = expected_chosen(rollout["id"], 50, IDENTITIES)
        expect_moves(opened, chosen, lambda event: None)
        promoted = act(api, "promote")
        expect_put_of(opened, "limits", promoted["revision"])


def test_resumed_streams_end_on_their_variant(
    service_factory: Callable[..., RunningService], service: RunningService, api: httpx.Client
) -> None:
    put(api, KEY, limits(5))
    with streams(service) as opened:
        first_events(opened)
        resume_from = put(api, "prod/other", limits(1))["revision"]
        expect_put_of(opened, "other", resume_from)
    rollout = start_rollout(api, **plan())
    chosen = expected_chosen(rollout["id"], 50, IDENTITIES)
    # from the ring of the instance that saw the transition: the move itself
    with streams(service, last_event_id=resume_from) as opened:
        expect_moves(opened, chosen, lambda event: assert_candidate(event, rollout))
    # on a fresh instance (empty ring): the window holds a rollout change, so a snapshot
    # that says each instance's variant
    fresh = service_factory()
    with streams(fresh, last_event_id=resume_from) as opened:
        for instance, stream in opened.items():
            event = stream.next()
            assert event is not None and event.event == "snapshot", instance
            (limits_item,) = [d for d in event.data["items"] if d["name"] == "limits"]
            if instance in chosen:
                assert limits_item["version"] == rollout["version"], instance
                assert limits_item["rollout"] == rollout["id"]
            else:
                assert limits_item["version"] == rollout["base_version"], instance
                assert "rollout" not in limits_item
            # named instances get it at the transition's revision (newer than what they hold)
            unnamed = api.get(f"/v1/configs/{KEY}").json()["revision"]
            wanted = rollout["revision"] if instance is not None else unnamed
            assert limits_item["revision"] == wanted, instance
        time.sleep(QUIET)
        assert all(stream.quiet(0) for stream in opened.values())


def assert_candidate(event: Any, rollout: dict[str, Any]) -> None:
    assert event.id == rollout["revision"] and event.data["version"] == rollout["version"]


def test_polls_get_their_variant_and_an_etag_that_follows_it(
    service: RunningService, api: httpx.Client
) -> None:
    base = put(api, KEY, limits(5))
    plain = api.get("/v1/configs/prod")
    rollout = start_rollout(api, **plan())
    chosen = expected_chosen(rollout["id"], 50, IDENTITIES)
    tags = {}
    for instance, labels in IDENTITIES.items():
        headers = identity_headers(instance, labels)
        answer = api.get("/v1/configs/prod", headers=headers)
        assert answer.status_code == 200, answer.text
        got = next(doc for doc in answer.json()["items"] if doc["name"] == "limits")
        if instance in chosen:
            assert (got["version"], got.get("rollout")) == (rollout["version"], rollout["id"])
        else:
            assert (got["version"], got.get("rollout")) == (base["version"], None)
        assert got["revision"] == rollout["revision"]  # newer than anything it applied
        tags[instance] = answer.headers["etag"]
        again = api.get("/v1/configs/prod", headers={**headers, "If-None-Match": tags[instance]})
        assert again.status_code == 304
    unnamed = api.get("/v1/configs/prod")
    assert unnamed.headers["etag"] == plain.headers["etag"]  # nothing changed for it
    assert [d["version"] for d in unnamed.json()["items"]] == [base["version"]]
    aborted = act(api, "abort")
    for instance, labels in IDENTITIES.items():
        headers = {**identity_headers(instance, labels), "If-None-Match": tags[instance]}
        answer = api.get("/v1/configs/prod", headers=headers)
        assert answer.status_code == 200, instance  # the ETag follows every transition
        got = answer.json()["items"][0]
        assert (got["version"], got["revision"]) == (base["version"], aborted["revision"])


def test_malformed_identity_headers_are_400(service: RunningService, api: httpx.Client) -> None:
    bad = (
        {"X-Configsvc-Instance": "-leading-dash"},
        {"X-Configsvc-Instance": "ok", "X-Configsvc-Labels": "not json"},
        {"X-Configsvc-Instance": "ok", "X-Configsvc-Labels": '["a"]'},
        {"X-Configsvc-Instance": "ok", "X-Configsvc-Labels": '{"a": 1}'},
        {"X-Configsvc-Labels": '{"a": "b"}'},
    )
    for headers in bad:
        answer = api.get("/v1/configs/prod", headers=headers)
        assert answer.status_code == 400, (headers, answer.text)
        stream = Stream(service.url, service.admin_token, "prod", headers)
        try:
            assert stream.status_code == 400, headers
        finally:
            stream.close()
