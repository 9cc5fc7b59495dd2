"""`x-configsvc-secret` in a user kind behaves like `api_key`: clear only for tokens with
`secrets`, `****` in every other answer (documents, listings, versions, the watch stream,
errors), restored from `****` on write-back, and masked for good once marked."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest
from kinds.kindtools import AGENT_ROLES, agent_roles
from support import RunningService, SseReader

MASK = "****"
SECRET = "tok-SECRET-58d1e0"
KIND = "/v1/schemas/AgentRoles"
DOC = "/v1/configs/prod/agents"


@pytest.fixture
def reader(service: RunningService, api: httpx.Client) -> str:
    created = api.post("/v1/tokens", json={"name": "r", "role": "writer", "namespaces": ["*"]})
    token: str = created.json()["token"]
    return token


def planner(doc: dict[str, Any]) -> dict[str, Any]:
    role: dict[str, Any] = doc["spec"]["roles"]["planner"]
    return role


def test_masked_everywhere_for_tokens_without_secrets(
    service: RunningService, api: httpx.Client, reader: str
) -> None:
    assert api.put(KIND, json={"schema": AGENT_ROLES}).status_code == 201
    stream = SseReader(service.url, reader, ["prod"])
    try:
        assert stream.next().event == "snapshot"
        assert (
            api.put(DOC, json={"kind": "AgentRoles", "spec": agent_roles(2, SECRET)}).status_code
            == 201
        )
        assert (
            api.put(DOC, json={"kind": "AgentRoles", "spec": agent_roles(3, SECRET)}).status_code
            == 200
        )
        event = stream.next()
        assert event is not None and event.event == "put"
        assert planner(event.data)["api_token"] == MASK
    finally:
        stream.close()
    assert planner(api.get(DOC).json())["api_token"] == SECRET
    with service.client(reader) as client:
        answers = [
            client.get(DOC),
            client.get("/v1/configs/prod"),
            client.get(f"{DOC}/versions/1"),
            client.get(f"{DOC}/history"),
        ]
        for answer in answers:
            assert answer.status_code == 200
            assert SECRET not in answer.text, answer.request.url
        assert planner(answers[0].json())["api_token"] == MASK
        late = SseReader(service.url, reader, ["prod"])  # a snapshot read from the store
        try:
            snapshot = late.next()
            assert snapshot is not None and snapshot.event == "snapshot"
            assert planner(snapshot.data["items"][0])["api_token"] == MASK
        finally:
            late.close()
        # write back what was read: the secret it could not see is kept
        masked = answers[0].json()
        masked["spec"]["roles"]["planner"]["max_concurrency"] = 7
        written = client.put(DOC, json=masked)
        assert written.status_code == 200, written.text
        assert SECRET not in written.text
    stored = api.get(DOC).json()
    assert planner(stored)["api_token"] == SECRET and planner(stored)["max_concurrency"] == 7
    nowhere = api.put(
        "/v1/configs/prod/new", json={"kind": "AgentRoles", "spec": agent_roles(1, MASK)}
    )
    assert nowhere.status_code == 422
    assert nowhere.json()["error"]["details"][0]["loc"] == [
        "spec",
        "roles",
        "planner",
        "api_token",
    ]


def test_a_secret_stays_masked_after_its_mark_is_dropped_or_its_kind_deleted(
    service: RunningService, api: httpx.Client, reader: str
) -> None:
    assert api.put(KIND, json={"schema": AGENT_ROLES}).status_code == 201
    api.put(DOC, json={"kind": "AgentRoles", "spec": agent_roles(2, SECRET)})
    unmarked = copy.deepcopy(AGENT_ROLES)
    del unmarked["$defs"]["role"]["properties"]["api_token"]["x-configsvc-secret"]
    assert api.put(KIND, json={"schema": unmarked}).status_code == 200
    with service.client(reader) as client:
        assert SECRET not in client.get(DOC).text
        assert SECRET not in client.get(f"{DOC}/versions/1").text
    api.delete(DOC)
    assert api.delete(KIND).status_code == 204
    with service.client(reader) as client:
        old = client.get(f"{DOC}/versions/1")
        assert old.status_code == 200 and SECRET not in old.text


def test_a_kind_new_to_this_instance_is_masked_on_first_read(
    service_factory: Any, api: httpx.Client
) -> None:
    """An instance that has not seen the kind through its watch yet still masks: reads learn
    the kinds of what they read from the store."""
    other = service_factory()
    created = api.post("/v1/tokens", json={"name": "r2", "role": "reader", "namespaces": ["*"]})
    token = created.json()["token"]
    with other.client(token) as reader_b:
        for round_ in range(10):
            kind = f"Fresh{round_}"
            schema = copy.deepcopy(AGENT_ROLES)
            assert api.put(f"/v1/schemas/{kind}", json={"schema": schema}).status_code == 201
            doc = f"/v1/configs/prod/fresh-{round_}"
            spec = agent_roles(1, SECRET)
            assert api.put(doc, json={"kind": kind, "spec": spec}).status_code == 201
            for answer in (reader_b.get(doc), reader_b.get("/v1/configs/prod")):
                assert answer.status_code == 200 and SECRET not in answer.text
