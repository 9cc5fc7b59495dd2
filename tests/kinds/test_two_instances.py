"""A kind changed on one instance is in force on every instance at once (two real services
on one real etcd): the very next document write on the other instance is decided by it, and
a kind change racing document writes never leaves a stored document that does not fit."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from typing import Any

import httpx
import jsonschema_rs
from kinds.kindtools import AGENT_ROLES, agent_roles
from support import RunningService

ROUNDS = 25
KIND = "/v1/schemas/AgentRoles"


def with_note(allowed: bool, ceiling: int = 64) -> dict[str, Any]:
    """AGENT_ROLES with a `note` field allowed or not, and `max_concurrency` <= `ceiling`."""
    schema = copy.deepcopy(AGENT_ROLES)
    props = schema["$defs"]["role"]["properties"]
    props["note"] = {"type": "string"} if allowed else False
    props["max_concurrency"] = {"type": "integer", "minimum": 1, "maximum": ceiling}
    return schema


def noted(note: str | None) -> dict[str, Any]:
    spec = agent_roles()
    if note is not None:
        spec["roles"]["coder"]["note"] = note
    return spec


def put(client: httpx.Client, path: str, spec: dict[str, Any]) -> httpx.Response:
    return client.put(path, json={"kind": "AgentRoles", "spec": spec})


def test_the_next_write_on_another_instance_sees_the_change(
    service_factory: Callable[..., RunningService],
) -> None:
    a, b = service_factory(), service_factory()
    doc = "/v1/configs/prod/agents"
    with a.client() as on_a, b.client() as on_b:
        for round_ in range(ROUNDS):
            assert on_a.put(KIND, json={"schema": with_note(True)}).status_code in (200, 201)
            accepted = put(on_b, doc, noted(f"round {round_}"))
            assert accepted.status_code in (200, 201), (round_, accepted.text)
            assert put(on_b, doc, noted(None)).status_code == 200  # so the next change fits
            assert on_a.put(KIND, json={"schema": with_note(False)}).status_code == 200
            refused = put(on_b, doc, noted("not any more"))
            assert refused.status_code == 422, (round_, refused.text)
            assert refused.json()["error"]["details"][0]["loc"][-1] == "note"
            # delete on A, then B refuses the kind; re-create on A, then B accepts it
            assert on_b.delete(doc).status_code == 200
            assert on_a.delete(KIND).status_code == 204
            gone = put(on_b, doc, noted(None))
            assert gone.status_code == 422, (round_, gone.text)
            assert gone.json()["error"]["details"][0]["loc"] == ["kind"]
            assert on_a.put(KIND, json={"schema": with_note(False)}).status_code == 201
            assert put(on_b, doc, noted(None)).status_code == 201
            assert on_b.get(KIND).json()["version"] == on_a.get(KIND).json()["version"]


def test_a_kind_change_racing_writes_never_strands_a_document(
    service_factory: Callable[..., RunningService],
) -> None:
    """Writers on B raise documents to 50 (fits only the loose schema) while A tightens the
    kind to <= 32: whichever wins, every stored document fits the kind that is stored."""
    a, b = service_factory(), service_factory()
    names = [f"agents-{i}" for i in range(4)]
    outcomes: dict[str, int] = {}
    with a.client() as on_a, b.client() as on_b:
        for _round in range(8):
            assert on_a.put(KIND, json={"schema": with_note(True, 64)}).status_code in (200, 201)
            for name in names:
                assert put(on_b, f"/v1/configs/prod/{name}", agent_roles(10)).status_code in (
                    200,
                    201,
                )
            start = threading.Barrier(len(names) + 1)

            def raise_to_50(name: str, client: httpx.Client, start: threading.Barrier) -> None:
                start.wait()
                for _ in range(5):
                    status = put(client, f"/v1/configs/prod/{name}", agent_roles(50)).status_code
                    outcomes[str(status)] = outcomes.get(str(status), 0) + 1

            clients = [b.client() for _ in names]
            threads = [
                threading.Thread(target=raise_to_50, args=(name, client, start))
                for name, client in zip(names, clients, strict=True)
            ]
            for thread in threads:
                thread.start()
            start.wait()
            tightened = on_a.put(KIND, json={"schema": with_note(True, 32)})
            outcomes[f"kind {tightened.status_code}"] = (
                outcomes.get(f"kind {tightened.status_code}", 0) + 1
            )
            for thread in threads:
                thread.join()
            for client in clients:
                client.close()
            stored_schema = on_a.get(KIND).json()["schema"]
            validator = jsonschema_rs.validator_for(stored_schema)
            for name in names:
                spec = on_a.get(f"/v1/configs/prod/{name}").json()["spec"]
                assert validator.is_valid(spec), (name, spec, stored_schema)
            for name in names:  # back to 10, so that the next round starts loose
                put(on_a, f"/v1/configs/prod/{name}", agent_roles(10))
    assert set(outcomes) <= {"200", "422", "kind 200", "kind 422"}, outcomes
    print(outcomes)
