"""`diff` (versions, local files) with masked secrets, and the `rollback` round trip."""

from __future__ import annotations

import json

import httpx
from cli.clitools import MODELS_YAML, Cli, models_spec, put


def test_diff_of_versions_masks_changed_secrets(cli: Cli, api: httpx.Client) -> None:
    put(api, "prod/chat-models", "ModelEndpoints", models_spec("sk-old-secret-value", 600))
    put(api, "prod/chat-models", "ModelEndpoints", models_spec("sk-new-secret-value", 900))
    result = cli("diff", "prod/chat-models")
    assert result.code == 0, result
    lines = result.out.splitlines()
    assert lines[:2] == ["--- prod/chat-models version 1", "+++ prod/chat-models version 2"]
    assert "-      api_key: ****" in lines
    assert "+      api_key: ****  (changed)" in lines
    assert "-        read: 600" in lines and "+        read: 900" in lines
    assert "secret-value" not in result.out
    explicit = cli("diff", "prod/chat-models", "--from", "1", "--to", "2")
    assert explicit.out == result.out
    same = cli("diff", "prod/chat-models", "--from", "2", "--to", "2")
    assert same.code == 0 and same.out == "" and "no differences" in same.err
    as_json = json.loads(cli("diff", "prod/chat-models", "-o", "json").out)
    assert as_json["changed"] is True and as_json["from_version"] == 1
    assert "+      api_key: ****  (changed)" in as_json["diff"]


def test_unchanged_secret_is_not_a_changed_line(cli: Cli, api: httpx.Client) -> None:
    put(api, "prod/chat-models", "ModelEndpoints", models_spec("sk-same", 600))
    put(api, "prod/chat-models", "ModelEndpoints", models_spec("sk-same", 900))
    result = cli("diff", "prod/chat-models")
    assert "api_key" not in result.out.replace("      api_key: ****\n", "")
    assert "(changed)" not in result.out


def test_diff_file_against_the_service(cli: Cli, api: httpx.Client) -> None:
    cli.write("models.yaml", MODELS_YAML)
    absent = cli("diff", "-f", "models.yaml")
    assert absent.code == 0, absent
    assert "--- prod/chat-models (not on the service)" in absent.out
    assert "+      api_key: ****" in absent.out
    cli("apply", "-f", "models.yaml")
    same = cli("diff", "-f", "models.yaml")
    assert same.out == "" and "prod/chat-models: no differences" in same.err
    cli.write("models.yaml", MODELS_YAML.replace("sk-old-secret-value", "sk-rotated-secret"))
    changed = cli("diff", "-f", "models.yaml")
    assert "+      api_key: ****  (changed)" in changed.out
    assert "secret" not in changed.out.replace("api_key", "")
    assert api.get("/v1/configs/prod/chat-models").json()["version"] == 1


def test_diff_failures(cli: Cli) -> None:
    cli("diff", "prod/missing").failed_with("not found")
    cli.write("bad.yaml", "kind: [\n")
    cli("diff", "-f", "bad.yaml").failed_with("bad.yaml:2: invalid YAML")


def test_rollback_round_trip(cli: Cli, api: httpx.Client) -> None:
    put(api, "prod/chat-models", "ModelEndpoints", models_spec("sk-one", 600))
    put(api, "prod/chat-models", "ModelEndpoints", models_spec("sk-two", 900))
    declined = cli("rollback", "prod/chat-models", "--steps", "1", input="n\n")
    assert declined.code == 1
    assert "+        read: 600" in declined.out  # the diff of what would change
    assert "Roll prod/chat-models back to version 1?" in declined.err
    assert api.get("/v1/configs/prod/chat-models").json()["version"] == 2
    agreed = cli("rollback", "prod/chat-models", "--steps", "1", "-m", "too slow", input="y\n")
    assert agreed.code == 0, agreed
    assert agreed.out.splitlines()[-1] == "rolled back prod/chat-models to version 1: now version 3"
    current = api.get("/v1/configs/prod/chat-models").json()
    assert current["version"] == 3 and current["message"] == "too slow"
    assert current["spec"]["endpoints"]["local"]["api_key"] == "sk-one"
    history = cli("history", "prod/chat-models", "-o", "json")
    assert json.loads(history.out)["items"][0]["action"] == "rollback"
    # and forward again, without a question
    forward = cli("rollback", "prod/chat-models", "--to", "2", "--yes", "-o", "json")
    assert forward.code == 0, forward
    assert json.loads(forward.out)["version"] == 4
    assert "sk-two" not in forward.out and "****" in forward.out
    assert forward.err == ""


def test_rollback_refusals(cli: Cli, api: httpx.Client) -> None:
    put(api, "prod/chat-models", "ModelEndpoints", models_spec())
    cli("rollback", "prod/chat-models", "--steps", "3", "--yes").failed_with("no version")
    cli("rollback", "prod/chat-models", "--to", "1", "--yes").failed_with("current version")
    cli("rollback", "prod/chat-models", "--to", "9", "--yes").failed_with("not found")
    cli("rollback", "prod/missing", "--to", "1", "--yes").failed_with("not found")
