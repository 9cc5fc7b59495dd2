"""`tokens create | list | revoke` and `schemas [--export DIR]`."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from cli.clitools import MODELS_YAML, Cli


def test_token_lifecycle(cli: Cli, api: httpx.Client) -> None:
    created = cli("tokens", "create", "ci", "--role", "reader", "--namespace", "prod*")
    assert created.code == 0, created
    token = created.out.strip()
    assert created.out == token + "\n"  # alone on stdout
    assert token.startswith("cst.ci.")
    assert "shown only this once" in created.err
    assert token not in created.err
    reader = cli("list", "prod", "--token", token)
    assert reader.code == 0, reader
    cli.write("models.yaml", MODELS_YAML)
    cli("apply", "-f", "models.yaml", "--token", token).failed_with("forbidden", "writer needed")
    cli("tokens", "list", "--token", token).failed_with("forbidden")
    listed = cli("tokens", "list")
    header, row = listed.out.splitlines()
    assert header.split() == ["NAME", "ROLE", "NAMESPACES", "SECRETS", "CREATED", "BY"]
    assert row.split()[:4] == ["ci", "reader", "prod*", "no"]
    assert token not in listed.out
    revoked = cli("tokens", "revoke", "ci")
    assert revoked.code == 0 and revoked.out == "revoked token 'ci'\n", revoked
    cli("list", "prod", "--token", token).failed_with("unauthorized")
    cli("tokens", "revoke", "ci").failed_with("not found")


def test_token_with_several_patterns_and_secrets(cli: Cli) -> None:
    args = ["tokens", "create", "svc", "-r", "writer", "-n", "prod", "-n", "team-*", "--secrets"]
    created = cli(*args, "-o", "json")
    assert created.code == 0, created
    body = json.loads(created.out)
    assert body["namespaces"] == ["prod", "team-*"] and body["secrets"] is True
    assert body["token"].startswith("cst.svc.")
    cli("tokens", "create", "svc", "-r", "reader", "-n", "x").failed_with("conflict")
    cli("tokens", "create", "bad", "-r", "reader", "-n", "NO!").failed_with("namespace")


def test_schemas_list(cli: Cli) -> None:
    result = cli("schemas")
    assert result.code == 0, result
    kinds = [line.split()[0] for line in result.out.splitlines()[1:]]
    assert kinds == ["AuthKeys", "ModelEndpoints", "RateLimits"]
    as_json = json.loads(cli("schemas", "-o", "json").out)
    assert {item["kind"] for item in as_json["items"]} == set(kinds)


def test_schemas_export_describes_whole_documents(cli: Cli) -> None:
    result = cli("schemas", "--export", "editor-schemas")
    assert result.code == 0, result
    folder = cli.cwd / "editor-schemas"
    assert sorted(p.name for p in folder.iterdir()) == [
        "AuthKeys.json",
        "ModelEndpoints.json",
        "RateLimits.json",
    ]
    schema = json.loads((folder / "ModelEndpoints.json").read_text())
    assert schema["properties"]["kind"] == {"const": "ModelEndpoints"}
    assert schema["required"] == ["namespace", "name", "kind", "spec"]
    spec = schema["properties"]["spec"]
    assert spec["additionalProperties"] is False
    assert spec["properties"]["endpoints"]["additionalProperties"] == {"$ref": "#/$defs/Endpoint"}
    assert "Endpoint" in schema["$defs"]
    assert _refs_resolve(schema)


def test_schemas_export_to_an_unwritable_place(cli: Cli) -> None:
    cli.write("file", "x")
    cli("schemas", "--export", "file/sub").failed_with("cannot write to file/sub")


def _refs_resolve(schema: dict[str, object]) -> bool:
    refs: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(schema)
    defs = schema["$defs"]
    assert isinstance(defs, dict)
    return all(Path(ref).name in defs for ref in refs)
