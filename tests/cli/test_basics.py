"""Global options, exit codes and failures that every command shares."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from cli.clitools import Cli, models_spec, put


def test_help_lists_every_command(bare_cli: Cli) -> None:
    result = bare_cli("--help")
    assert result.code == 0
    for command in (
        "serve", "get", "list", "apply", "delete", "history", "diff", "rollback", "watch",
        "schemas", "tokens",
    ):  # fmt: skip
        assert command in result.out


def test_version(bare_cli: Cli) -> None:
    result = bare_cli("--version")
    assert result.code == 0 and result.out.startswith("configsvc "), result


def test_shell_completion(bare_cli: Cli) -> None:
    words = {"COMP_WORDS": "configsvc tokens create x --role ", "COMP_CWORD": "5"}
    result = bare_cli(env={"_CONFIGSVC_COMPLETE": "complete_bash", **words})
    assert result.out.split() == ["reader", "writer", "admin"], result


def test_no_arguments_shows_help_as_a_usage_error(bare_cli: Cli) -> None:
    result = bare_cli()
    assert result.code == 2
    assert "Usage" in result.out + result.err


@pytest.mark.parametrize(
    "args",
    [
        ["nosuch"],
        ["get", "no-slash"],
        ["get", "prod/Bad_Name", "-o", "json"],
        ["list", "prod", "-o", "xml"],
        ["rollback", "prod/x", "--to", "1", "--steps", "1"],
        ["diff", "prod/x", "-f", "a.yaml"],
        ["tokens", "create", "x", "--role", "boss", "--namespace", "*"],
    ],
)
def test_usage_errors_exit_2(bare_cli: Cli, args: list[str]) -> None:
    result = bare_cli(*args)
    assert result.code == 2, result
    assert result.out == ""


def test_options_before_or_after_the_command_name(
    cli: Cli, service: Any, api: httpx.Client
) -> None:
    put(api, "prod/chat-models", "ModelEndpoints", models_spec())
    url, token = service.url, service.admin_token
    env = {"CONFIGSVC_URL": "http://127.0.0.1:1", "CONFIGSVC_TOKEN": "wrong"}
    after = cli("get", "prod/chat-models", "--url", url, "--token", token, "-o", "json", env=env)
    before = cli("--url", url, "--token", token, "-o", "json", "get", "prod/chat-models", env=env)
    assert after.code == before.code == 0, (after, before)
    assert after.out == before.out
    assert '"name": "chat-models"' in after.out
    # a flag after the name wins over the same flag before it
    mixed = cli("-o", "yaml", "--url", "http://127.0.0.1:1", "get", "prod/chat-models",
                "--url", url, "-o", "json")  # fmt: skip
    assert mixed.code == 0 and mixed.out.startswith("{"), mixed
    nested = cli("tokens", "list", "--url", url, "--token", token, "-o", "json", env=env)
    assert nested.code == 0 and '"items"' in nested.out, nested


def test_unreachable_service(bare_cli: Cli) -> None:
    result = bare_cli("list", "prod", "--url", "http://127.0.0.1:1", "--token", "t")
    result.failed_with("cannot reach the service at http://127.0.0.1:1")


def test_default_url_is_the_local_service(bare_cli: Cli) -> None:
    bare_cli("list", "prod").failed_with("http://127.0.0.1:8080")


def test_invalid_url(bare_cli: Cli) -> None:
    bare_cli("list", "prod", "--url", "not-a-url").failed_with("invalid service URL")


def test_bad_token(cli: Cli) -> None:
    cli("list", "prod", "--token", "cst.nobody.xyz").failed_with(
        "unauthorized: invalid token", "--token"
    )
    cli("list", "prod", env={"CONFIGSVC_TOKEN": "nope"}).failed_with("CONFIGSVC_TOKEN")


def test_missing_token_says_how_to_give_one(cli: Cli) -> None:
    env = dict(cli.env)
    del env["CONFIGSVC_TOKEN"]
    cli.env = env
    cli("list", "prod").failed_with("unauthorized", "--token or CONFIGSVC_TOKEN")


def test_token_falls_back_to_the_local_admin_token_file(cli: Cli, service: Any) -> None:
    del cli.env["CONFIGSVC_TOKEN"]
    token_file = cli.cwd.parent / "data" / "admin.token"
    token_file.parent.mkdir()
    token_file.write_text(service.admin_token + "\n")
    result = cli("list", "prod")
    assert result.code == 0, result


def test_not_found(cli: Cli) -> None:
    cli("get", "prod/missing").failed_with("not found", "prod/missing")
    cli("history", "prod/missing").failed_with("not found")
    cli("delete", "prod/missing", "--yes").failed_with("not found")


def test_forbidden_namespace(cli: Cli, api: httpx.Client) -> None:
    body = {"name": "team-a", "role": "reader", "namespaces": ["team-a-*"]}
    token = api.post("/v1/tokens", json=body).json()["token"]
    cli("list", "prod", "--token", token).failed_with("forbidden", "'prod'")
