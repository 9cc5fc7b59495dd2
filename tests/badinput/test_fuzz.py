"""Fuzzing the REST API from its OpenAPI description with schemathesis, against a real service.

Every operation of `/openapi.json` except `GET /v1/watch` (a stream that never ends; its
refusals are covered by hand in test_requests.py) is sent schema-conforming and
schema-violating requests, by three callers:

- anonymous and a reader token without `secrets`: nothing may change in the store at all
  (etcd's revision stays put), and no answer may hold the seeded secret;
- the admin token: whatever it writes, every refused request (4xx) leaves etcd's revision
  where it was.

For every caller: no 5xx, and every refusal is in the contract's error shape.

The fleet's writing routes (`POST /v1/fleet/reports`, `DELETE /v1/fleet/reports/{instance}`)
are fuzzed on their own (`test_fuzz_the_fleet_routes`): any token may report, and what a
service instance heard is written in the background, so there the check is on the stored
keys: a refusal changes none, a report or goodbye changes fleet records only, a read
changes nothing, and no answer to a caller without `secrets` holds the seeded secret
(which a seeded rejection's error quotes).

The copy of the schema the fuzzer works from is enriched so that requests get past the
first checks: names follow the name rule (or are the seeded ones), ETag headers look like
ETags, and a PUT body is one of the kinds with its real JSON Schema (GET /v1/schemas).
The negative mode breaks all of these.

schemathesis only sends valid JSON of valid Unicode, so `test_fuzz_raw_bodies` adds what
it cannot: valid bodies with one value swapped for deep nesting, out-of-range numbers,
lone surrogates, broken syntax, stray bytes, huge strings, in other encodings.

CI runs a bounded number of examples (20 per operation and mode for the admin, 10 for the
reader, 5 anonymous; 150 raw bodies); `pytest -m slow` runs 300/150/75 and 3,000.
"""

from __future__ import annotations

import copy
import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from badinput.badtools import MARKER, StoreProbe, assert_error_shape, models_spec, rate_spec
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from support import RunningService

from configsvc.embedded.process import EtcdProcess

NAME_PATTERN = r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$"
KIND_PATTERN = r"^[A-Z][A-Za-z0-9]{0,63}$"
USER_KIND = "FuzzRoles"
USER_KIND_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["roles"],
    "additionalProperties": False,
    "properties": {
        "roles": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["model"],
                "additionalProperties": False,
                "properties": {
                    "model": {"type": "string", "minLength": 1},
                    "max_concurrency": {"type": "integer", "minimum": 1},
                    "token": {"type": "string", "x-configsvc-secret": True},
                },
            },
        }
    },
}


def roles_spec() -> dict[str, Any]:
    return {"roles": {"planner": {"model": "m", "max_concurrency": 2, "token": MARKER}}}


SEEDED_NAMESPACES = ["prod", "staging"]
SEEDED_NAMES = ["chat-models", "limits", "keys", "roles"]
READER_NAME = "fuzz-reader-q7"
EXCLUDED_PATHS = ("/v1/watch", "/v1/admin/restore")
"""A stream that never ends; a restore (a JSON-lines body, replacing the store: tested in
tests/security/test_backup.py)."""
FLEET_WRITES = ("/v1/fleet/reports", "/v1/fleet/reports/{instance}")
"""Fuzzed apart: see `test_fuzz_the_fleet_routes`."""
SEEDED_INSTANCES = ["seed-admin-1", "seed-reader-1"]
INSTANCE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
FLEET_RECORDS = "/configsvc/flt/i/"
FLEET_HEARD = "/configsvc/flt/s/"


# ---- the schema the fuzzer works from ----------------------------------------------------


def _inline_defs(schema: dict[str, Any], prefix: str, components: dict[str, Any]) -> Any:
    """Move `$defs` into `components/schemas` (as `<prefix>.<name>`) and point refs there."""
    schema = copy.deepcopy(schema)
    defs = schema.pop("$defs", {})

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                node = {**node, "$ref": f"#/components/schemas/{prefix}.{ref[8:]}"}
            return {key: rewrite(value) for key, value in node.items()}
        if isinstance(node, list):
            return [rewrite(item) for item in node]
        return node

    for name, value in defs.items():
        components[f"{prefix}.{name}"] = rewrite(value)
    return rewrite(schema)


def fuzz_schema(service: RunningService) -> dict[str, Any]:
    """`/openapi.json`, with name rules and the kinds' schemas filled in."""
    raw: dict[str, Any] = httpx.get(f"{service.url}/openapi.json", timeout=10).json()
    components = raw.setdefault("components", {}).setdefault("schemas", {})
    with service.client() as client:
        kinds = client.get("/v1/schemas").json()["items"]
    etag = {"type": "string", "pattern": r'^"[0-9]{1,3}"$'}
    for path, operations in raw["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "header" and parameter["name"] == "if-match":
                    parameter["schema"] = {"anyOf": [etag, {"type": "string", "enum": ["*"]}]}
                if parameter["in"] == "header" and parameter["name"] == "if-none-match":
                    star = {"type": "string", "enum": ["*"]}
                    parameter["schema"] = star if method == "put" else {"anyOf": [etag, star]}
                if parameter["in"] == "path" and parameter["name"] == "instance":
                    parameter["schema"] = {
                        "anyOf": [
                            {"type": "string", "enum": SEEDED_INSTANCES},
                            {"type": "string", "pattern": INSTANCE_PATTERN},
                        ]
                    }
                if parameter["in"] == "path" and parameter["name"] in ("ns", "name", "kind"):
                    seeded = {
                        "ns": SEEDED_NAMESPACES,
                        "name": [*SEEDED_NAMES, READER_NAME],
                        "kind": [kind["kind"] for kind in kinds],
                    }[parameter["name"]]
                    # Any string at all comes from the negative mode (which breaks the pattern).
                    pattern = KIND_PATTERN if parameter["name"] == "kind" else NAME_PATTERN
                    parameter["schema"] = {
                        "anyOf": [
                            {"type": "string", "enum": seeded},
                            {"type": "string", "pattern": pattern},
                        ]
                    }
        post = operations.get("post")
        if path == "/v1/tokens" and post is not None:
            token = post["requestBody"]["content"]["application/json"]["schema"]["properties"]
            token["name"] = {"type": "string", "pattern": NAME_PATTERN}
            token["namespaces"]["items"] = {
                "anyOf": [
                    {"type": "string", "enum": ["*", "prod", "team-*"]},
                    {"type": "string", "pattern": r"^[a-z0-9._*-]{1,63}$"},
                ]
            }
        if path == "/v1/fleet/reports" and post is not None:
            _enrich_report(post["requestBody"]["content"]["application/json"]["schema"])
        put = operations.get("put")
        if path == "/v1/configs/{ns}/{name}" and put is not None:
            # One variant per kind, with its real schema. (The generic body the service
            # documents is a superset of these: next to them it would be all the fuzzer
            # makes. Schema-violating bodies come from the negative mode.)
            media = put["requestBody"]["content"]["application/json"]
            generic = media["schema"]["properties"]
            variants = []
            for kind in kinds:
                spec = _inline_defs(kind["schema"], kind["kind"], components)
                properties = {
                    **{key: generic[key] for key in ("version", "revision", "updated_by")},
                    "kind": {"type": "string", "enum": [kind["kind"]]},
                    "spec": spec,
                    "message": {"type": "string", "maxLength": 1000},
                }
                variants.append(
                    {
                        "type": "object",
                        "properties": properties,
                        "required": ["kind", "spec"],
                        "additionalProperties": False,
                    }
                )
            media["schema"] = {"anyOf": variants}
    return raw


def _enrich_report(schema: dict[str, Any]) -> None:
    """Reports that name the seeded namespaces, documents and instances (or any valid one)."""
    properties = schema["properties"]
    properties["namespaces"]["items"] = {
        "anyOf": [
            {"type": "string", "enum": SEEDED_NAMESPACES},
            {"type": "string", "pattern": NAME_PATTERN},
        ]
    }
    keys = [f"{ns}/{name}" for ns in SEEDED_NAMESPACES for name in SEEDED_NAMES]
    for section in ("documents", "rejected"):
        properties[section]["propertyNames"] = {"type": "string", "enum": keys}
    properties["instance"] = {
        "anyOf": [{"type": "string", "enum": SEEDED_INSTANCES}, properties["instance"]]
    }
    # records outlive the run: none is removed as silent in the background while checked
    properties["report_interval"] = {"type": "number", "minimum": 1000, "maximum": 3600}


def operations(raw: dict[str, Any], only: tuple[str, ...] | None = None) -> list[Any]:
    """The operations to fuzz: `only` those paths, or every one but the excluded ones."""
    schema = schemathesis.openapi.from_dict(raw)
    wanted = (lambda path: path in only) if only is not None else _fuzzed_with_the_rest
    return [result.ok() for result in schema.get_all_operations() if wanted(result.ok().path)]


def _fuzzed_with_the_rest(path: str) -> bool:
    return path not in EXCLUDED_PATHS and path not in FLEET_WRITES


# ---- running the fuzzer ------------------------------------------------------------------


@dataclass
class FuzzRun:
    """One caller's run over every operation, and what it saw."""

    service: RunningService
    probe: StoreProbe
    token: str | None
    frozen: bool
    """Nothing may change in the store during this run (a caller that may not write)."""
    secrets_visible: bool
    counts: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)

    def check(self, case: Any, session: requests.Session) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        before = self.probe.revision()
        response = case.call(
            base_url=self.service.url, session=session, headers=headers, timeout=15
        )
        after = self.probe.revision()
        label = f"{case.method} {case.operation.path}"
        self.counts[label] += 1
        self.statuses[response.status_code] += 1
        where = f"{label}: {case.as_curl_command(headers=headers)}"
        status = response.status_code
        assert status < 500, f"{status} {response.text[:300]}\n{where}"
        if status >= 400:
            assert_error_shape(_as_httpx(response))
            assert after == before, f"a refused request wrote {self.probe.changed_since(before)}"
        if self.frozen or case.method == "GET":
            assert after == before, f"{status}: wrote {self.probe.changed_since(before)}\n{where}"
        if not self.secrets_visible:
            assert MARKER not in response.text, f"a secret in the answer\n{where}"

    def run(self, operation: Any, mode: GenerationMode, examples: int) -> None:
        session = requests.Session()

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate, Phase.shrink],
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: Any) -> None:
            self.check(case, session)

        try:
            fuzz()
        except Unsatisfiable:
            # Nothing to violate: an operation without parameters or body has no negative cases.
            if mode is not GenerationMode.NEGATIVE:
                raise
        finally:
            session.close()


def _as_httpx(response: Any) -> httpx.Response:
    headers = [
        (name, value)
        for name, values in response.headers.items()
        for value in (values if isinstance(values, list) else [values])
    ]
    return httpx.Response(response.status_code, headers=headers, content=response.content)


@pytest.fixture
def seeded(service: RunningService, etcd: EtcdProcess) -> Iterator[tuple[StoreProbe, str]]:
    """The service with documents (one holding the secret MARKER) and a reader token."""
    with service.client() as api:
        kind = api.put(f"/v1/schemas/{USER_KIND}", json={"schema": USER_KIND_SCHEMA})
        assert kind.status_code == 201, kind.text
        for ns in SEEDED_NAMESPACES:
            for name, kind, spec in (
                ("chat-models", "ModelEndpoints", models_spec()),
                ("limits", "RateLimits", rate_spec(1)),
                ("limits", "RateLimits", rate_spec(2)),
                ("roles", USER_KIND, roles_spec()),
            ):
                answer = api.put(f"/v1/configs/{ns}/{name}", json={"kind": kind, "spec": spec})
                assert answer.status_code in (200, 201), answer.text
        api.delete("/v1/configs/staging/limits")
        created = api.post(
            "/v1/tokens", json={"name": READER_NAME, "role": "reader", "namespaces": ["*"]}
        )
        assert created.status_code == 201, created.text
    probe = StoreProbe(etcd)
    yield probe, created.json()["token"]
    probe.close()


def fuzz_everything(
    service: RunningService, probe: StoreProbe, reader: str, examples: int
) -> dict[str, Any]:
    raw = fuzz_schema(service)
    ops = operations(raw)
    assert len(ops) >= 15, [op.path for op in ops]
    runs = {
        "anonymous": FuzzRun(service, probe, None, frozen=True, secrets_visible=False),
        "reader": FuzzRun(service, probe, reader, frozen=True, secrets_visible=False),
        "admin": FuzzRun(service, probe, service.admin_token, frozen=False, secrets_visible=True),
    }
    budget = {
        "anonymous": max(3, examples // 4),
        "reader": max(5, examples // 2),
        "admin": examples,
    }
    started = time.monotonic()
    for who, run in runs.items():  # admin last: it may delete the reader's token
        state = probe.state()
        for operation in ops:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                run.run(operation, mode, budget[who])
        if run.frozen:
            assert probe.state() == state, f"{who}: the store changed"
    summary = {
        "seconds": round(time.monotonic() - started, 1),
        "operations": len(ops),
        "requests": {who: sum(run.counts.values()) for who, run in runs.items()},
        "per_operation": {who: dict(sorted(run.counts.items())) for who, run in runs.items()},
        "statuses": {who: dict(sorted(run.statuses.items())) for who, run in runs.items()},
    }
    print(json.dumps(summary, indent=1))
    return summary


def test_fuzz_the_rest_api(service: RunningService, seeded: tuple[StoreProbe, str]) -> None:
    probe, reader = seeded
    # 14 examples per operation, mode and token keeps CI near its budget; the slow
    # test_fuzz_the_rest_api_longer runs 300
    summary = fuzz_everything(service, probe, reader, examples=14)
    assert summary["requests"]["admin"] >= 16 * 14


# ---- the fleet's writing routes ----------------------------------------------------------


def fleet_changes(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    """Keys that changed, less what service instances heard (written in the background)."""
    keys = set(before) | set(after)
    return {k for k in keys if before.get(k) != after.get(k) and not k.startswith(FLEET_HEARD)}


@dataclass
class FleetFuzzRun(FuzzRun):
    """Checks on the stored keys: refusals and reads change none, reports and goodbyes change
    fleet records only."""

    def check(self, case: Any, session: requests.Session) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        before = self.probe.state()
        response = case.call(
            base_url=self.service.url, session=session, headers=headers, timeout=15
        )
        changed = fleet_changes(before, self.probe.state())
        label = f"{case.method} {case.operation.path}"
        self.counts[label] += 1
        self.statuses[response.status_code] += 1
        where = f"{label}: {case.as_curl_command(headers=headers)}"
        status = response.status_code
        assert status < 500, f"{status} {response.text[:300]}\n{where}"
        if status >= 400 or case.method == "GET" or self.frozen:
            if status >= 400:
                assert_error_shape(_as_httpx(response))
            assert not changed, f"{status}: changed {sorted(changed)}\n{where}"
        assert all(key.startswith(FLEET_RECORDS) for key in changed), (sorted(changed), where)
        if not self.secrets_visible:
            assert MARKER not in response.text, f"a secret in the answer\n{where}"


@pytest.fixture
def fleet_seeded(service: RunningService, seeded: tuple[StoreProbe, str]) -> tuple[StoreProbe, str]:
    """`seeded`, and two fleet records: the admin's (its rejection quotes the secret) and
    the reader's."""
    probe, reader = seeded
    refusal = {"version": 1, "revision": 1, "error": f"no: {MARKER}-local"}
    for instance, token in zip(SEEDED_INSTANCES, (service.admin_token, reader), strict=True):
        body = {
            "instance": instance,
            "mode": "streaming",
            "namespaces": SEEDED_NAMESPACES,
            "documents": {"prod/limits": {"version": 2, "revision": 3, "applied_at": MOMENT}},
            "rejected": {"prod/chat-models": refusal},
            "report_interval": 3600,
        }
        with service.client(token) as client:
            answer = client.post("/v1/fleet/reports", json=body)
            assert answer.status_code == 204, answer.text
    return probe, reader


MOMENT = "2026-11-22T01:02:03.456Z"


def fuzz_the_fleet(
    service: RunningService, probe: StoreProbe, reader: str, examples: int
) -> dict[str, Any]:
    ops = operations(fuzz_schema(service), only=FLEET_WRITES)
    assert len(ops) == len(FLEET_WRITES), [op.path for op in ops]
    runs = {
        "anonymous": FleetFuzzRun(service, probe, None, frozen=True, secrets_visible=False),
        "reader": FleetFuzzRun(service, probe, reader, frozen=False, secrets_visible=False),
        "admin": FleetFuzzRun(
            service, probe, service.admin_token, frozen=False, secrets_visible=True
        ),
    }
    for who, run in runs.items():
        for operation in ops:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                run.run(operation, mode, examples if who != "anonymous" else max(3, examples // 4))
        if who == "reader":  # the reader sees the fleet, never the seeded secret
            with service.client(reader) as client:
                listing = client.get("/v1/fleet", params={"namespace": "prod"})
                assert listing.status_code == 200 and MARKER not in listing.text
    summary = {
        "requests": {who: sum(run.counts.values()) for who, run in runs.items()},
        "statuses": {who: dict(sorted(run.statuses.items())) for who, run in runs.items()},
    }
    print(json.dumps(summary, indent=1))
    return summary


def test_fuzz_the_fleet_routes(
    service: RunningService, fleet_seeded: tuple[StoreProbe, str]
) -> None:
    probe, reader = fleet_seeded
    summary = fuzz_the_fleet(service, probe, reader, examples=14)
    assert summary["requests"]["admin"] >= len(FLEET_WRITES) * 14
    for who in ("reader", "admin"):  # reports got through, and got refused
        statuses = summary["statuses"][who]
        assert 204 in statuses and any(400 <= status < 500 for status in statuses), who
    statuses = fuzz_raw_bodies(service, probe, examples=60, targets=FLEET_RAW_TARGETS)
    assert sum(statuses.values()) == 60


# ---- raw bodies: valid documents with one value replaced by a nasty JSON fragment -------

PLACEHOLDER = "\x00PLACEHOLDER\x00"


def _deep(depth: int, kind: str) -> str:
    return "[" * depth + "]" * depth if kind == "[" else '{"a":' * depth + "0" + "}" * depth


FRAGMENTS = st.one_of(
    st.builds(_deep, st.integers(30, 20_000), st.sampled_from(["[", "{"])),
    st.sampled_from(["1e400", "-1e999", "1E+309", "1e-400", "-0", "1.7976931348623157e308"]),
    st.integers(4_200, 6_000).map(lambda n: "9" * n),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "{", "[1,]", '"open', "tru", "{}}"]),
    st.sampled_from(['"\\ud800"', '"a\\udfffb"', '"\\udc00\\ud800"', '"\\u0000"']),
    st.sampled_from(['"\\ud83d\\ude00"', '"****"', '""', "null", "[]", "{}", "true"]),
    st.text(max_size=30).map(json.dumps),
    st.binary(min_size=1, max_size=30).map(lambda raw: raw.decode("latin-1")),
    st.integers(500_000, 600_000).map(lambda n: '"' + "x" * n + '"'),
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


def _replace(node: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copied = copy.deepcopy(node)
    target = copied
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return copied


RAW_TARGETS: list[tuple[str, str, dict[str, Any]]] = [
    ("PUT", "/v1/configs/prod/chat-models", {"kind": "ModelEndpoints", "spec": models_spec()}),
    ("PUT", "/v1/configs/prod/new-doc", {"kind": "RateLimits", "spec": rate_spec(3)}),
    ("POST", "/v1/configs/prod/limits/rollback", {"to_version": 1, "message": "m"}),
    ("POST", "/v1/tokens", {"name": "raw-fuzz", "role": "reader", "namespaces": ["*"]}),
    ("PUT", "/v1/configs/prod/roles", {"kind": USER_KIND, "spec": roles_spec()}),
    ("PUT", f"/v1/schemas/{USER_KIND}", {"schema": USER_KIND_SCHEMA, "description": "d"}),
    ("PUT", "/v1/schemas/RawFuzz", {"schema": USER_KIND_SCHEMA, "message": "m"}),
]


FLEET_RAW_TARGETS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "POST",
        "/v1/fleet/reports",
        {
            "instance": "raw-fuzz-1",
            "app": "gateway",
            "labels": {"region": "eu"},
            "mode": "polling",
            "namespaces": ["prod"],
            "documents": {"prod/limits": {"version": 2, "revision": 3, "applied_at": MOMENT}},
            "rejected": {"prod/keys": {"version": 1, "revision": 2, "error": "e"}},
            "report_interval": 30,
        },
    )
]


@st.composite
def raw_bodies(
    draw: Any, targets: list[tuple[str, str, dict[str, Any]]]
) -> tuple[str, str, bytes, str]:
    method, path, body = draw(st.sampled_from(targets))
    where = draw(st.sampled_from(_paths(body)))
    text = json.dumps(_replace(body, where, PLACEHOLDER)).replace(
        json.dumps(PLACEHOLDER), draw(FRAGMENTS)
    )
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-16", "latin-1"]))
    content_type = draw(
        st.sampled_from(["application/json", "application/json", "text/plain", "Application/JSON"])
    )
    return method, path, text.encode(encoding, "surrogatepass"), content_type


def fuzz_raw_bodies(
    service: RunningService,
    probe: StoreProbe,
    examples: int,
    targets: list[tuple[str, str, dict[str, Any]]] = RAW_TARGETS,
) -> Counter[int]:
    statuses: Counter[int] = Counter()
    fleet = targets is FLEET_RAW_TARGETS
    with service.client() as api:

        @given(request=raw_bodies(targets))
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(request: tuple[str, str, bytes, str]) -> None:
            method, path, content, content_type = request
            before = probe.state() if fleet else probe.revision()
            response = api.request(
                method, path, content=content, headers={"Content-Type": content_type}
            )
            statuses[response.status_code] += 1
            what = (method, path, content[:200], content_type)
            assert response.status_code < 500, (response.status_code, response.text[:200], what)
            if response.status_code >= 400:
                assert_error_shape(response)
                if isinstance(before, dict):
                    assert not fleet_changes(before, probe.state()), what
                else:
                    assert probe.revision() == before, what
                assert MARKER not in response.text, what
            # Whatever was stored can be read back: listing and snapshot stay readable.
            assert api.get("/v1/configs/prod").status_code == 200, what

        fuzz()
    print("raw bodies:", dict(sorted(statuses.items())))
    return statuses


def test_fuzz_raw_bodies(service: RunningService, seeded: tuple[StoreProbe, str]) -> None:
    """What the OpenAPI-driven fuzzer cannot send (it only makes valid JSON of valid
    Unicode): bodies with one value swapped for deep nesting, out-of-range numbers, lone
    surrogates, broken syntax, stray bytes, huge strings, in other encodings."""
    statuses = fuzz_raw_bodies(service, seeded[0], examples=150)
    assert sum(statuses.values()) == 150


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_fuzz_the_rest_api_longer(service: RunningService, seeded: tuple[StoreProbe, str]) -> None:
    probe, reader = seeded
    fuzz_everything(service, probe, reader, examples=300)
    fuzz_raw_bodies(service, probe, examples=3_000)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_fuzz_the_fleet_routes_longer(
    service: RunningService, fleet_seeded: tuple[StoreProbe, str]
) -> None:
    probe, reader = fleet_seeded
    fuzz_the_fleet(service, probe, reader, examples=300)
    fuzz_raw_bodies(service, probe, examples=1_000, targets=FLEET_RAW_TARGETS)
