"""`get`, `list`, `delete` and `history`."""

from __future__ import annotations

import json

import httpx
import yaml
from cli.clitools import Cli, models_spec, put


def test_get_prints_yaml_that_apply_takes_back(cli: Cli, api: httpx.Client) -> None:
    put(api, "prod/chat-models", "ModelEndpoints", models_spec(), message="first")
    result = cli("get", "prod/chat-models")
    assert result.code == 0, result
    assert result.out.startswith("# prod/chat-models  version 1")
    document = yaml.safe_load(result.out)
    assert document["kind"] == "ModelEndpoints"
    assert document["message"] == "first"
    assert document["spec"]["endpoints"]["local"]["api_key"] == "****"
    # writing the masked document back keeps the secret: nothing changes
    cli.write("back.yaml", result.out)
    again = cli("apply", "-f", "back.yaml")
    assert again.code == 0 and again.out.startswith("unchanged"), again
    stored = api.get("/v1/configs/prod/chat-models").json()
    assert stored["spec"]["endpoints"]["local"]["api_key"] == "sk-old-secret-value"


def test_get_masks_secrets_unless_asked(cli: Cli, api: httpx.Client) -> None:
    put(api, "prod/chat-models", "ModelEndpoints", models_spec())
    for fmt in ("table", "json", "yaml"):
        result = cli("get", "prod/chat-models", "-o", fmt)
        assert result.code == 0, result
        assert "sk-old-secret-value" not in result.out
        assert "****" in result.out
    shown = cli("get", "prod/chat-models", "--show-secrets", "-o", "json")
    assert json.loads(shown.out)["spec"]["endpoints"]["local"]["api_key"] == "sk-old-secret-value"


def test_show_secrets_needs_a_token_that_may_read_them(cli: Cli, api: httpx.Client) -> None:
    put(api, "prod/chat-models", "ModelEndpoints", models_spec())
    body = {"name": "reader", "role": "reader", "namespaces": ["prod"]}
    token = api.post("/v1/tokens", json=body).json()["token"]
    result = cli("get", "prod/chat-models", "--show-secrets", "--token", token)
    assert result.code == 0, result
    assert "sk-old-secret-value" not in result.out
    assert "token 'reader' may not read secrets" in result.err
    listed = cli("list", "prod", "--show-secrets", "--token", token)
    assert listed.code == 0 and "may not read secrets" in listed.err, listed
    admin = cli("get", "prod/chat-models", "--show-secrets")
    assert "may not read secrets" not in admin.err


def test_get_an_earlier_version(cli: Cli, api: httpx.Client) -> None:
    put(api, "prod/chat-models", "ModelEndpoints", models_spec(read=600))
    put(api, "prod/chat-models", "ModelEndpoints", models_spec(read=900))
    old = json.loads(cli("get", "prod/chat-models", "--version", "1", "-o", "json").out)
    assert old["version"] == 1
    assert old["spec"]["endpoints"]["local"]["timeout"]["read"] == 600
    cli("get", "prod/chat-models", "--version", "7").failed_with("not found", "version 7")


def test_list(cli: Cli, api: httpx.Client) -> None:
    put(api, "prod/chat-models", "ModelEndpoints", models_spec(), message="hello")
    put(api, "prod/limits", "RateLimits", {"limits": {"chat": {"requests_per_second": 5}}})
    table = cli("list", "prod")
    assert table.code == 0, table
    header, *rows = table.out.splitlines()
    assert header.split() == ["NAME", "KIND", "VERSION", "UPDATED", "BY", "MESSAGE"]
    assert rows[0].split()[:3] == ["chat-models", "ModelEndpoints", "1"]
    assert rows[0].split()[-1] == "hello"
    assert rows[1].split()[:3] == ["limits", "RateLimits", "1"]
    assert header.index("KIND") == rows[0].index("ModelEndpoints")  # aligned
    listing = json.loads(cli("list", "prod", "-o", "json").out)
    assert [doc["name"] for doc in listing["items"]] == ["chat-models", "limits"]
    assert "sk-old-secret-value" not in json.dumps(listing)
    namespaces = cli("list")
    assert namespaces.out.split() == ["NAMESPACE", "prod"]
    empty = cli("list", "nothing-here")
    assert empty.code == 0 and "no documents" in empty.err


def test_delete_asks_first(cli: Cli, api: httpx.Client) -> None:
    put(api, "prod/chat-models", "ModelEndpoints", models_spec())
    refused = cli("delete", "prod/chat-models", input="n\n")
    assert "Delete prod/chat-models (ModelEndpoints, version 1)?" in refused.err
    assert refused.code == 1
    assert refused.err_lines[-1].startswith("error: cancelled")
    no_answer = cli("delete", "prod/chat-models")  # stdin closed
    assert no_answer.code == 1
    assert api.get("/v1/configs/prod/chat-models").status_code == 200
    agreed = cli("delete", "prod/chat-models", input="y\n")
    assert agreed.code == 0, agreed
    assert agreed.out.startswith("deleted prod/chat-models")
    assert api.get("/v1/configs/prod/chat-models").status_code == 404


def test_delete_with_yes(cli: Cli, api: httpx.Client) -> None:
    put(api, "prod/chat-models", "ModelEndpoints", models_spec())
    result = cli("delete", "prod/chat-models", "--yes", "-o", "json")
    assert result.code == 0, result
    assert json.loads(result.out)["deleted"] is True
    assert result.err == ""


def test_history(cli: Cli, api: httpx.Client) -> None:
    put(api, "prod/chat-models", "ModelEndpoints", models_spec(read=600), message="first")
    put(api, "prod/chat-models", "ModelEndpoints", models_spec(read=900), message="slower")
    api.delete("/v1/configs/prod/chat-models")
    table = cli("history", "prod/chat-models")
    assert table.code == 0, table
    header, *rows = table.out.splitlines()
    assert header.split() == ["VERSION", "WHEN", "WHO", "ACTION", "MESSAGE"]
    assert [row.split()[0] for row in rows] == ["3", "2", "1"]
    assert rows[1].split()[2:] == ["admin", "put", "slower"]
    assert rows[0].split()[3] == "delete"
    limited = json.loads(cli("history", "prod/chat-models", "-n", "1", "-o", "json").out)
    assert [row["version"] for row in limited["items"]] == [3]
