"""The `configsvc` command: its commands and the flags every one of them takes."""

from __future__ import annotations

import importlib.metadata
from typing import Annotated

import typer

from configsvc.cli import _cmd_rollout, _cmd_schemas, _cmd_secrets, _cmd_tokens
from configsvc.cli._cmd_admin import audit, reclaim
from configsvc.cli._cmd_apply import apply
from configsvc.cli._cmd_backup import backup, etcd_snapshot, restore
from configsvc.cli._cmd_diff import diff
from configsvc.cli._cmd_docs import delete, get, history, list_
from configsvc.cli._cmd_export import export
from configsvc.cli._cmd_fleet import fleet, status
from configsvc.cli._cmd_promote import promote
from configsvc.cli._cmd_rollback import rollback
from configsvc.cli._cmd_serve import serve
from configsvc.cli._cmd_watch import watch
from configsvc.cli._options import (
    CaOption,
    DataDirOption,
    GlobalFlags,
    OutputOption,
    TokenOption,
    UrlOption,
)

DISTRIBUTION = "configsvc"
HELP = """Hot-reloading configuration for services that call LLMs.

Talks to a configsvc service over HTTP.

--url, --token, --data-dir and -o may come before or after the command's name.

Exit status: 0 success, 1 failure (one line on stderr), 2 usage error.
"""


def build_app() -> typer.Typer:
    """A fresh `configsvc` app (no module-level state)."""
    app = typer.Typer(
        name="configsvc",
        help=HELP,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode="markdown",
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(_root)
    app.command()(serve)
    app.command()(get)
    app.command("list")(list_)
    app.command()(apply)
    app.command()(delete)
    app.command()(history)
    app.command()(diff)
    app.command()(rollback)
    app.command()(promote)
    app.command()(export)
    app.command()(watch)
    app.add_typer(_cmd_schemas.app, name="schemas")
    app.command()(fleet)
    app.command()(status)
    app.add_typer(_cmd_rollout.app, name="rollout")
    app.add_typer(_cmd_tokens.app, name="tokens")
    app.add_typer(_cmd_secrets.app, name="secrets")
    app.command()(reclaim)
    app.command()(audit)
    app.command()(backup)
    app.command()(restore)
    app.command("etcd-snapshot")(etcd_snapshot)
    return app


def _print_version(given: bool) -> None:
    if given:
        typer.echo(f"configsvc {_installed_version()}")
        raise typer.Exit()


def _installed_version() -> str:
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _root(
    ctx: typer.Context,
    url: UrlOption = None,
    token: TokenOption = None,
    output: OutputOption = None,
    ca: CaOption = None,
    data_dir: DataDirOption = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_print_version, help="Show the version and exit"
        ),
    ] = False,
) -> None:
    ctx.obj = GlobalFlags(url, token, output, ca, data_dir)
