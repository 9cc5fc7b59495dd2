"""User kinds: what validating and writing their documents costs, next to the built-in
ModelEndpoints in the same run.

Run: .venv/bin/python bench/kinds_validation.py [--rounds N] [--puts K] [--documents D]

1. Validation, in process: a 200-item user-kind document (AgentRoles, 200 roles) and a
   10 KiB one, each against jsonschema-rs (what the service uses, compiled once) and
   `jsonschema` (pure Python, Draft 2020-12, a referencing registry that retrieves
   nothing), beside the built-in ModelEndpoints (pydantic, the service's own path) on a
   200-endpoint and a 10 KiB document. Microseconds per validation, median of N rounds.
2. PUT p50/p99 over REST (a real service on a real etcd), the four documents interleaved
   one for one so that all see the same background load; ratio to the built-in's PUT.
3. A compatible change of a kind over D stored documents (`PUT /v1/schemas/{kind}`,
   which checks every document of the kind): p50 of a few changes.
4. The worst case the complexity bound allows: a schema at `MAX_COST` checks per value and
   a document of the largest accepted size (512 KiB), timed once.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
from propagation import ADMIN_TOKEN, HOST, quantile, start_service

from configsvc.embedded.binary import find_etcd_binary
from configsvc.embedded.process import EtcdProcess
from configsvc.errors import ValidationFailed
from configsvc.kinds.complexity import MAX_CHECKS, MAX_COST
from configsvc.kinds.kind import BuiltinKind, UserKind
from configsvc.kinds.schema_rules import check_schema, compile_validator
from configsvc.registry import KindRegistry
from configsvc.store.kinds import KindRecord

REPO = Path(__file__).resolve().parent.parent
TEN_KIB = 10 * 1024
MAX_BODY = 512 * 1024


def agent_schema() -> dict[str, Any]:
    import yaml

    found: dict[str, Any] = yaml.safe_load(
        (REPO / "examples/kinds/kinds/agent-roles.yaml").read_text()
    )["schema"]
    return found


def role(i: int) -> dict[str, Any]:
    return {
        "description": f"role number {i}",
        "model": f"model-{i % 7}",
        "skills": ["plan", "code", f"skill-{i}"],
        "max_concurrency": 1 + i % 64,
        "temperature": 0.5,
    }


def agents(items: int) -> dict[str, Any]:
    return {"roles": {f"role-{i}": role(i) for i in range(items)}}


def endpoint(i: int) -> dict[str, Any]:
    return {
        "base_url": f"http://gpu-{i}.internal:1234/v1",
        "model": f"model-{i}",
        "api_key": "sk-bench",
        "timeout": {"connect": 5, "read": 600},
        "retry": {"attempts": 3},
    }


def models(items: int) -> dict[str, Any]:
    return {"default": "e-0", "endpoints": {f"e-{i}": endpoint(i) for i in range(items)}}


def sized(make: Callable[[int], dict[str, Any]], size: int) -> dict[str, Any]:
    """The largest document `make(n)` of at most `size` bytes of JSON."""
    n = 1
    while len(json.dumps(make(n + 1))) <= size:
        n += 1
    return make(n)


def jsonschema_validator(schema: dict[str, Any]) -> Callable[[Any], bool]:
    import jsonschema
    from referencing import Registry

    validator = jsonschema.Draft202012Validator(schema, registry=Registry())
    return validator.is_valid


def per_call(fn: Callable[[], object], rounds: int) -> float:
    """Median seconds of one call over `rounds` rounds (each of enough calls for ~20 ms)."""
    started = time.perf_counter()
    fn()
    once = max(time.perf_counter() - started, 1e-6)
    calls = max(1, int(0.02 / once))
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - started) / calls)
    return statistics.median(samples)


def validation_table(rounds: int) -> None:
    schema = agent_schema()
    compiled = compile_validator(schema)
    python_valid = jsonschema_validator(schema)
    builtin = KindRegistry().builtin("ModelEndpoints")
    assert isinstance(builtin, BuiltinKind)
    docs = {
        "200 items": (agents(200), models(200)),
        "10 KiB": (sized(agents, TEN_KIB), sized(models, TEN_KIB)),
    }
    print("| document | bytes (user / built-in) | jsonschema-rs µs | jsonschema µs | "
          "built-in pydantic µs | rs vs built-in | jsonschema vs built-in |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, (user_doc, builtin_doc) in docs.items():
        assert compiled.is_valid(user_doc) and python_valid(user_doc)
        rs = per_call(lambda d=user_doc: compiled.is_valid(d), rounds)
        py = per_call(lambda d=user_doc: python_valid(d), max(3, rounds // 4))
        bi = per_call(lambda d=builtin_doc: builtin.validate(d), rounds)
        sizes = f"{len(json.dumps(user_doc))} / {len(json.dumps(builtin_doc))}"
        print(f"| {name} | {sizes} | {rs * 1e6:.0f} | {py * 1e6:.0f} | {bi * 1e6:.0f} "
              f"| {rs / bi:.2f}x | {py / bi:.1f}x |")  # fmt: skip
    started = time.perf_counter()
    check_schema(schema)
    spent = time.perf_counter() - started
    print(f"\nChecking and compiling the AgentRoles schema: {spent * 1e3:.1f} ms")


def worst_case() -> None:
    """The most a document's validation may cost: a schema at `MAX_COST` checks per value
    and a document with as many values as `MAX_CHECKS` allows, each passing every check;
    and a document of the largest accepted size (512 KiB), which the budget refuses."""
    branches = [{"type": "integer", "minimum": -i} for i in range(MAX_COST - 3)]
    items = {"allOf": branches}
    schema = {"type": "object", "properties": {"a": {"type": "array", "items": items}}}
    record = KindRecord("Worst", 1, check_schema(schema).schema, None, (), "t", "bench")
    kind = UserKind(record)
    fitting = {"a": [9] * (MAX_CHECKS // kind.cost - 2)}
    started = time.perf_counter()
    kind.validate(fitting)
    spent = time.perf_counter() - started
    largest = {"a": [9] * ((MAX_BODY - 100) // 2)}
    started = time.perf_counter()
    try:
        kind.validate(largest)
    except ValidationFailed:
        refused = time.perf_counter() - started
    print(f"\nWorst case allowed: {kind.cost} checks per value x {len(fitting['a'])} values "
          f"validated in {spent * 1e3:.0f} ms; a 512 KiB document of that kind refused "
          f"unvalidated in {refused * 1e3:.1f} ms")  # fmt: skip


async def put_table(url: str, puts: int) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        response = await client.put("/v1/schemas/AgentRoles", json={"schema": agent_schema()})
        response.raise_for_status()
        bodies = {
            "AgentRoles 200 items": ("AgentRoles", agents(200)),
            "AgentRoles 10 KiB": ("AgentRoles", sized(agents, TEN_KIB)),
            "ModelEndpoints 200 items": ("ModelEndpoints", models(200)),
            "ModelEndpoints 10 KiB": ("ModelEndpoints", sized(models, TEN_KIB)),
        }
        samples: dict[str, list[float]] = {name: [] for name in bodies}
        for seq in range(puts + 10):
            for name, (kind, spec) in bodies.items():
                changed = copy.deepcopy(spec)
                changed["bench_seq"] = seq  # refused by either kind: a changed doc instead
                changed.pop("bench_seq")
                if kind == "AgentRoles":
                    changed["roles"]["role-0"]["max_concurrency"] = 1 + seq % 64
                else:
                    changed["endpoints"]["e-0"]["timeout"]["read"] = 100 + seq
                path = f"/v1/configs/bench/{name.lower().replace(' ', '-')}"
                started = time.perf_counter()
                answer = await client.put(path, json={"kind": kind, "spec": changed})
                spent = time.perf_counter() - started
                answer.raise_for_status()
                if seq >= 10:
                    samples[name].append(spent)
    print("\n| PUT | samples | p50 ms | p99 ms | p50 vs built-in of the same size |")
    print("|---|---:|---:|---:|---:|")
    for name, values in samples.items():
        peer = name.replace("AgentRoles", "ModelEndpoints")
        ratio = quantile(values, 0.5) / quantile(samples[peer], 0.5)
        print(f"| {name} | {len(values)} | {quantile(values, 0.5) * 1e3:.2f} "
              f"| {quantile(values, 0.99) * 1e3:.2f} | {ratio:.2f}x |")  # fmt: skip


async def compatibility(url: str, documents: int) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    schema = agent_schema()
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
        (await client.put("/v1/schemas/Fleet", json={"schema": schema})).raise_for_status()
        for i in range(documents):
            body = {"kind": "Fleet", "spec": agents(3)}
            (await client.put(f"/v1/configs/ns-{i % 20}/doc-{i}", json=body)).raise_for_status()
        spent = []
        for limit in range(5):
            looser = copy.deepcopy(schema)
            looser["$defs"]["role"]["properties"]["max_concurrency"]["maximum"] = 1000 + limit
            started = time.perf_counter()
            answer = await client.put("/v1/schemas/Fleet", json={"schema": looser})
            spent.append(time.perf_counter() - started)
            answer.raise_for_status()
        stricter = copy.deepcopy(schema)
        stricter["$defs"]["role"]["properties"]["max_concurrency"]["maximum"] = 1
        started = time.perf_counter()
        refused = await client.put("/v1/schemas/Fleet", json={"schema": stricter})
        refused_in = time.perf_counter() - started
        assert refused.status_code == 422
        failing = len({d["document"] for d in refused.json()["error"]["details"]})
    print(
        f"\nCompatible change of a kind with {documents} stored documents: p50 "
        f"{statistics.median(spent) * 1e3:.0f} ms (max {max(spent) * 1e3:.0f} ms); an "
        f"incompatible one refused in {refused_in * 1e3:.0f} ms naming {failing} documents"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--puts", type=int, default=200)
    parser.add_argument("--documents", type=int, default=1000)
    args = parser.parse_args()
    validation_table(args.rounds)
    worst_case()
    workdir = Path(tempfile.mkdtemp(prefix="configsvc-bench-kinds-"))
    etcd = EtcdProcess(binary=find_etcd_binary(), data_dir=workdir / "etcd")
    etcd.start()
    service = start_service(etcd.client_url, workdir, "auto")
    try:
        url = f"http://{HOST}:{service.port}"
        asyncio.run(put_table(url, args.puts))
        asyncio.run(compatibility(url, args.documents))
    finally:
        service.stop()
        etcd.stop()


if __name__ == "__main__":
    jsonschema_rs.__name__  # noqa: B018 - the validator in use must be importable
    main()
