"""Every command's failures, as a new user meets them: a wrong URL, a wrong or missing token,
a missing file, a bad YAML line, an unknown document. Each is one line on stderr saying
what happened and what to do (exit status 1, no traceback)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from cli.clitools import LIMITS_YAML, Cli, put

from configsvc.cli._app import build_app

KIND_FILE = """\
kind: Notes
schema:
  type: object
  properties:
    text: {type: string}
"""

COMMANDS: dict[str, list[str]] = {
    "get": ["get", "prod/limits"],
    "list": ["list", "prod"],
    "apply": ["apply", "-f", "limits.yaml"],
    "delete": ["delete", "prod/limits", "--yes"],
    "history": ["history", "prod/limits"],
    "diff": ["diff", "-f", "limits.yaml"],
    "rollback": ["rollback", "prod/limits", "--steps", "1", "--yes"],
    "promote": ["promote", "prod", "staging", "--yes"],
    "export": ["export", "prod"],
    "watch": ["watch", "prod"],
    "reclaim": ["reclaim", "--keep", "5", "--yes"],
    "audit": ["audit"],
    "schemas": ["schemas"],
    "schemas apply": ["schemas", "apply", "-f", "notes.yaml"],
    "schemas delete": ["schemas", "delete", "Notes", "--yes"],
    "schemas history": ["schemas", "history", "Notes"],
    "tokens create": ["tokens", "create", "ci", "--role", "reader", "--namespace", "prod"],
    "tokens list": ["tokens", "list"],
    "tokens revoke": ["tokens", "revoke", "ci"],
    "secrets rotate-key": ["secrets", "rotate-key", "--no-new-key"],
    "backup": ["backup", "out.backup"],
    "restore": ["restore", "in.backup", "--force", "--yes"],
    "fleet": ["fleet", "prod"],
    "status": ["status", "prod/limits"],
    "rollout start": ["rollout", "start", "prod/limits", "-f", "limits.yaml"],
    "rollout status": ["rollout", "status", "prod/limits"],
    "rollout promote": ["rollout", "promote", "prod/limits"],
    "rollout pause": ["rollout", "pause", "prod/limits"],
    "rollout resume": ["rollout", "resume", "prod/limits"],
    "rollout abort": ["rollout", "abort", "prod/limits"],
}
"""One run of every command that talks to the service (all but the local ones)."""
LOCAL_COMMANDS = {"serve", "etcd-snapshot"}
"""Commands that work on this machine's files, not through the service."""
BACKUP_HEADER = '{"format": "configsvc-backup", "version": 1, "revision": 1, "keys": 0}\n'

SWEEP_WORKERS = 4
"""Commands run at once by a sweep (each is a process that mostly starts Python)."""


def command_names(group: Any, prefix: str = "") -> set[str]:
    """Every command of a (typer) group, nested ones as `group command`; a group that runs
    by itself (e.g. `schemas`) counts too."""
    names = set()
    for name, command in group.commands.items():
        full = f"{prefix}{name}"
        if hasattr(command, "commands"):
            names |= command_names(command, f"{full} ")
            if command.invoke_without_command:
                names.add(full)
        else:
            names.add(full)
    return names


@pytest.fixture
def files(bare_cli: Cli) -> Cli:
    bare_cli.write("limits.yaml", LIMITS_YAML)
    bare_cli.write("notes.yaml", KIND_FILE)
    bare_cli.write("in.backup", BACKUP_HEADER)
    return bare_cli


def test_the_sweep_covers_every_command() -> None:
    group = typer.main.get_command(build_app())
    assert command_names(group) - LOCAL_COMMANDS == set(COMMANDS)


def sweep(cli: Cli, extra: list[str], *fragments: str) -> None:
    """Run every command with `extra` flags; each must fail with one line holding
    `fragments` (all failures are reported together)."""

    def check(name: str) -> tuple[str, str | None]:
        try:
            cli(*COMMANDS[name], *extra).failed_with(*fragments)
        except AssertionError as exc:
            return name, str(exc).splitlines()[0]
        return name, None

    with ThreadPoolExecutor(SWEEP_WORKERS) as pool:
        wrong = {name: error for name, error in pool.map(check, sorted(COMMANDS)) if error}
    assert not wrong, wrong


def test_a_wrong_url(files: Cli) -> None:
    sweep(
        files,
        ["--url", "http://127.0.0.1:1", "--token", "t"],
        "cannot reach the service at http://127.0.0.1:1 (from --url): connection refused",
        "check that the service runs there and the URL is right (--url or CONFIGSVC_URL)",
    )


def test_the_default_url_says_how_to_start_the_service(bare_cli: Cli) -> None:
    bare_cli("list", "prod", "--token", "t", env={"CONFIGSVC_URL": ""}).failed_with(
        "cannot reach the service at http://127.0.0.1:8080 (the default URL)",
        "start it with `configsvc serve`",
    )
    bare_cli("list", "prod", "--url", "cfg.internal:8080").failed_with(
        "invalid service URL 'cfg.internal:8080' (from --url)", "such as http://127.0.0.1:8080"
    )


def test_a_wrong_token(files: Cli, service: Any) -> None:
    sweep(
        files,
        ["--url", service.url, "--token", "not-the-token"],
        f"unauthorized: invalid token (token from --token, sent to {service.url})",
        "check the token given with --token",
        "configsvc tokens create",
    )


def test_no_token_names_every_way_to_give_one(bare_cli: Cli, service: Any) -> None:
    bare_cli.env["CONFIGSVC_URL"] = service.url
    token_file = Path(bare_cli.env["CONFIGSVC_DATA_DIR"]) / "admin.token"
    bare_cli("list", "prod").failed_with(
        f"no token was sent to {service.url}",
        f"{token_file} does not exist",
        "--token or CONFIGSVC_TOKEN",
        "--data-dir or CONFIGSVC_DATA_DIR",
    )


def test_data_dir_finds_the_admin_token_of_the_service(
    bare_cli: Cli, service: Any, tmp_path: Path
) -> None:
    """`configsvc serve --port P --data-dir DIR` elsewhere: the CLI is pointed at DIR."""
    bare_cli.env["CONFIGSVC_URL"] = service.url
    served = tmp_path / "served-data"
    served.mkdir()
    (served / "admin.token").write_text(service.admin_token + "\n")
    assert bare_cli("list", "prod", "--data-dir", str(served)).code == 0
    assert bare_cli("--data-dir", str(served), "list", "prod").code == 0
    # a flag wins over a token in the environment
    wrong_env = {"CONFIGSVC_TOKEN": "wrong"}
    assert bare_cli("list", "prod", "--data-dir", str(served), env=wrong_env).code == 0
    # the admin token of another service's data dir: say so
    other = Path(bare_cli.env["CONFIGSVC_DATA_DIR"])
    other.mkdir(exist_ok=True)
    (other / "admin.token").write_text("the-token-of-another-service\n")
    bare_cli("list", "prod").failed_with(
        f"invalid token (the admin token of {other / 'admin.token'}",
        "another service's?",
        "--data-dir or CONFIGSVC_DATA_DIR",
    )


@pytest.mark.parametrize(
    "args",
    [
        ["apply", "-f", "missing.yaml"],
        ["diff", "-f", "missing.yaml"],
        ["schemas", "apply", "-f", "missing.yaml"],
    ],
)
def test_a_missing_file(bare_cli: Cli, args: list[str]) -> None:
    bare_cli(*args).failed_with(
        "missing.yaml: no such file or folder",
        "give a YAML or JSON file, a folder of them, or - for standard input",
    )


@pytest.mark.parametrize(
    "args",
    [
        ["apply", "-f", "bad.yaml"],
        ["diff", "-f", "bad.yaml"],
        ["schemas", "apply", "-f", "bad.yaml"],
    ],
)
def test_a_bad_yaml_line(bare_cli: Cli, args: list[str]) -> None:
    """(Files are read before anything is sent: no service is needed.)"""
    bare_cli.write("bad.yaml", "namespace: prod\nname: limits\nmessage: ratio: 2\nkind: x\n")
    bare_cli(*args).failed_with(
        "bad.yaml:3: invalid YAML: mapping values are not allowed here",
        "quote a value holding ': '",
    )


def test_an_unknown_document(cli: Cli, api: httpx.Client) -> None:
    listed = "`configsvc list prod` lists its documents"
    for args in (
        ["get", "prod/nothing"],
        ["delete", "prod/nothing", "--yes"],
        ["history", "prod/nothing"],
        ["diff", "prod/nothing"],
        ["rollback", "prod/nothing", "--steps", "1", "--yes"],
    ):
        cli(*args).failed_with("not found", "prod/nothing", listed)
    put(api, "prod/limits", "RateLimits", {"limits": {}})
    versions = "`configsvc history prod/limits` lists its versions"
    cli("get", "prod/limits", "--version", "7").failed_with("no version 7", versions)
    cli("rollback", "prod/limits", "--to", "7", "--yes").failed_with("no version 7", versions)
    cli("diff", "prod/limits", "--from", "7").failed_with("no version 7", versions)
    cli("promote", "prod", "staging", "-n", "nothing", "--yes").failed_with("prod/nothing")
    cli("schemas", "history", "Nothing").failed_with("`configsvc schemas` lists the kinds")
    cli("tokens", "revoke", "nothing").failed_with("`configsvc tokens list` lists the tokens")


class _NotConfigsvc(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<html><body>Welcome to nginx!</body></html>"
        self.send_response(404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def other_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotConfigsvc)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_url_where_something_else_answers(bare_cli: Cli, other_server: str) -> None:
    bare_cli("list", "prod", "--url", other_server, "--token", "t").failed_with(
        f"Not Found from {other_server}, not in configsvc's error format",
        "Welcome to nginx!",
        "check that the URL (from --url) is the configsvc service",
    )
