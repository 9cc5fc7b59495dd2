"""`configsvc fleet NS` and `configsvc status NS/NAME`, run as the installed command."""

from __future__ import annotations

import json

import httpx
import yaml
from cli.clitools import Cli

from tests.fleet.helpers import applied, post, report


def limits(rps: float) -> dict[str, object]:
    return {"kind": "RateLimits", "spec": {"limits": {"chat": {"requests_per_second": rps}}}}


def seed(api: httpx.Client) -> dict[str, int]:
    """prod/limits at version 2; gw-a on it, gw-b still on 1 and refusing 2."""
    first = api.put("/v1/configs/prod/limits", json=limits(5)).json()
    second = api.put("/v1/configs/prod/limits", json=limits(6)).json()
    on_two = {"prod/limits": applied(2, second["revision"], second["updated_at"])}
    assert post(api, report("gw-a", documents=on_two, labels={"region": "eu"})).status_code == 204
    refusal = {"version": 2, "revision": second["revision"], "error": "chat: at most 5"}
    on_one = {"prod/limits": applied(1, first["revision"], first["updated_at"])}
    body = report("gw-b", documents=on_one, rejected={"prod/limits": refusal}, mode="polling")
    assert post(api, body).status_code == 204
    return {"v1": first["version"], "v2": second["version"]}


def test_fleet_lists_instances_as_a_table_and_as_data(cli: Cli, api: httpx.Client) -> None:
    seed(api)
    done = cli("fleet", "prod")
    assert done.code == 0, done.err
    lines = done.out.splitlines()
    header = lines[0].split()
    assert header[:5] == ["INSTANCE", "APP", "LABELS", "MODE", "VERSIONS"]
    assert "LAST" in header and "LAG" in header and "REJECTED" in header
    a = next(line for line in lines if line.startswith("gw-a"))
    b = next(line for line in lines if line.startswith("gw-b"))
    assert "gateway" in a and "region=eu" in a and "streaming" in a and "limits=v2" in a
    assert "0 ms" in a and ("ago" in a or "just now" in a)
    assert "polling" in b and "limits=v1" in b and b.rstrip().endswith("limits=v2")
    as_json = json.loads(cli("fleet", "prod", "-o", "json").out)
    assert [item["instance"] for item in as_json["items"]] == ["gw-a", "gw-b"]
    as_yaml = yaml.safe_load(cli("-o", "yaml", "fleet", "prod").out)
    assert as_yaml == as_json | {"items": as_yaml["items"]}
    empty = cli("fleet", "staging")
    assert empty.code == 0 and "no SDK instance reports for staging" in empty.err


def test_status_says_who_is_on_which_version_and_who_refused_it(
    cli: Cli, api: httpx.Client
) -> None:
    versions = seed(api)
    done = cli("status", "prod/limits")
    assert done.code == 0, done.err
    assert f"prod/limits: version {versions['v2']}" in done.out
    assert "1 of 2 instances on it" in done.out
    assert "lag to version 2: p50 0 ms, max 0 ms" in done.out
    assert "v2" in done.out and "v1" in done.out and "current" in done.out
    assert "rejected by 1 instance" in done.out
    refused = next(line for line in done.out.splitlines() if line.startswith("gw-b"))
    assert "gateway" in refused and "v2" in refused and "chat: at most 5" in refused
    data = json.loads(cli("status", "prod/limits", "-o", "json").out)
    assert data["on_version"] == {"2": 1, "1": 1} and data["instances"] == 2
    missing = cli("status", "prod/nothing")
    missing.failed_with("not found", "prod/nothing")
    assert cli("status", "not-a-ref").code == 2
