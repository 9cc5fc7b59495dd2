"""`apply -f FILE|DIR [--dry-run]`: per-document outcomes, refusals and broken files."""

from __future__ import annotations

import json
from textwrap import dedent

import httpx
from cli.clitools import LIMITS_YAML, MODELS_YAML, Cli


def test_created_updated_unchanged(cli: Cli, api: httpx.Client) -> None:
    cli.write("conf/all.yaml", MODELS_YAML + "---\n" + LIMITS_YAML)
    first = cli("apply", "-f", "conf/all.yaml")
    assert first.code == 0, first
    assert first.out.splitlines() == [
        "created       prod/chat-models  version 1  (conf/all.yaml:1)",
        "created       prod/limits  version 1  (conf/all.yaml:14)",
    ]
    cli.write(
        "conf/all.yaml", MODELS_YAML.replace("read: 600", "read: 900") + "---\n" + LIMITS_YAML
    )
    second = cli("apply", "-f", "conf/all.yaml")
    assert second.code == 0, second
    assert second.out.splitlines() == [
        "updated       prod/chat-models  version 2  (conf/all.yaml:1)",
        "unchanged     prod/limits  version 1  (conf/all.yaml:14)",
    ]
    history = api.get("/v1/configs/prod/limits/history").json()["items"]
    assert len(history) == 1  # unchanged wrote nothing
    assert api.get("/v1/configs/prod/chat-models").json()["message"] == "first"


def test_dry_run_stores_nothing(cli: Cli, api: httpx.Client) -> None:
    cli.write("models.yaml", MODELS_YAML)
    would = cli("apply", "-f", "models.yaml", "--dry-run")
    assert would.code == 0, would
    assert would.out.startswith("would create  prod/chat-models  version 1")
    assert api.get("/v1/configs/prod/chat-models").status_code == 404
    cli("apply", "-f", "models.yaml")
    cli.write("models.yaml", MODELS_YAML.replace("read: 600", "read: 900"))
    update = cli("apply", "-f", "models.yaml", "--dry-run")
    assert update.out.startswith("would update  prod/chat-models  version 2"), update
    assert api.get("/v1/configs/prod/chat-models").json()["version"] == 1
    bad = cli.write("bad.yaml", MODELS_YAML.replace("default: local", "default: nowhere"))
    cli("apply", "-f", str(bad), "--dry-run").failed_with("refused", "spec.default")


def test_folder_applies_document_by_document(cli: Cli, api: httpx.Client) -> None:
    cli.write("conf/a-models.yaml", MODELS_YAML)
    cli.write("conf/b-broken.yaml", "namespace: prod\nname: x\nkind: [oops\n")
    cli.write("conf/sub/c-limits.json", json.dumps(__import__("yaml").safe_load(LIMITS_YAML)))
    cli.write("conf/notes.txt", "not a config file")
    cli.write("conf/.hidden.yaml", "broken: [")
    result = cli("apply", "-f", "conf", "-o", "json")
    assert result.code == 1, result
    outcomes = json.loads(result.out)
    assert [(o["name"], o["result"]) for o in outcomes] == [
        ("chat-models", "created"),
        (None, "failed"),
        ("limits", "created"),
    ]
    assert outcomes[1]["source"] == "conf/b-broken.yaml:4"
    assert result.err_lines[0].startswith("error: conf/b-broken.yaml:4: invalid YAML")
    assert result.err_lines[-1] == "error: 1 of 3 documents not applied"
    assert api.get("/v1/configs/prod/limits").status_code == 200


def test_refusal_names_the_field_paths(cli: Cli, api: httpx.Client) -> None:
    cli.write(
        "bad.yaml",
        MODELS_YAML.replace("http://127.0.0.1:1234/v1", "ftp://x").replace("read: 600", "read: 0"),
    )
    line = cli("apply", "-f", "bad.yaml").failed_with(
        "prod/chat-models (bad.yaml:1): refused:",
        "spec.endpoints.local.base_url: must be an http:// or https:// URL",
        "; spec.endpoints.local.timeout.read: ",
    )
    assert "sk-old-secret-value" not in line
    assert api.get("/v1/configs/prod/chat-models").status_code == 404
    cli.write("typo.yaml", MODELS_YAML.replace("model: codebooga-34b", "modle: codebooga-34b"))
    cli("apply", "-f", "typo.yaml").failed_with("spec.endpoints.local.modle")
    cli.write("kind.yaml", MODELS_YAML.replace("kind: ModelEndpoints", "kind: Nope"))
    cli("apply", "-f", "kind.yaml").failed_with("unknown kind 'Nope'", "kind:")


def test_broken_yaml_reports_its_line(cli: Cli) -> None:
    cli.write("broken.yaml", "namespace: prod\nname: x\nspec:\n  a: 1\n b: 2\n")
    cli("apply", "-f", "broken.yaml").failed_with("broken.yaml:5: invalid YAML")
    cli.write("broken.json", '{"namespace": "prod",\n "name": }')
    cli("apply", "-f", "broken.json").failed_with("broken.json:2: invalid JSON")
    cli.write("nameless.yaml", "kind: RateLimits\nspec: {}\n")
    cli("apply", "-f", "nameless.yaml").failed_with(
        "nameless.yaml:1: the document has no namespace"
    )
    cli.write("list.yaml", "- a\n- b\n")
    cli("apply", "-f", "list.yaml").failed_with("list.yaml:1: a document must be a mapping")
    cli("apply", "-f", "missing.yaml").failed_with("missing.yaml: no such file or folder")


def test_timestamps_stay_strings(cli: Cli, api: httpx.Client) -> None:
    keys = dedent(
        """\
        namespace: prod
        name: keys
        kind: AuthKeys
        spec:
          keys:
            - id: team-a
              sha256: "%s"
              scopes: [chat]
              not_before: 2026-11-01T00:00:00Z
        """
    ) % ("a" * 64)
    cli.write("keys.yaml", keys)
    result = cli("apply", "-f", "keys.yaml")
    assert result.code == 0, result
    stored = api.get("/v1/configs/prod/keys").json()["spec"]["keys"][0]
    assert stored["not_before"].startswith("2026-11-01T00:00:00")


def test_apply_yaml_output(cli: Cli) -> None:
    cli.write("models.yaml", MODELS_YAML)
    result = cli("apply", "-f", "models.yaml", "-o", "yaml")
    assert result.code == 0, result
    assert "result: created" in result.out
