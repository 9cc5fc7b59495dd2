"""`tokens create | list | revoke`: API tokens (needs an admin token)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from configsvc_schemas.wire import Role

from configsvc.cli._options import DataDirOption, OutputFormat, OutputOption, TokenOption, UrlOption
from configsvc.cli._session import open_session

app = typer.Typer(help="Create, list and revoke API tokens (needs an admin token).")


@app.command()
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The token's name (shown as updated_by)")],
    role: Annotated[Role, typer.Option("--role", "-r", help="What the token may do")],
    namespaces: Annotated[
        list[str],
        typer.Option(
            "--namespace",
            "-n",
            help="Namespace pattern it may touch: prod, team-a-*, * (repeatable)",
        ),
    ],
    secrets: Annotated[
        bool, typer.Option("--secrets", help="May read secret values (api_key) in clear")
    ] = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
    output: OutputOption = None,
) -> None:
    """Create a token and print it, alone on stdout: it is shown this once."""
    with open_session(ctx, url, token, output, data_dir) as s:
        body = {"name": name, "role": role.value, "namespaces": namespaces, "secrets": secrets}
        created = s.api.request("POST", "/v1/tokens", body=body).json()
        if s.out.fmt is OutputFormat.TABLE:
            sys.stdout.write(created["token"] + "\n")
            sys.stdout.flush()
        else:
            s.out.data(created)
        patterns = ", ".join(created.get("namespaces", namespaces))
        s.out.note(
            f"created token {name!r}: {role.value} on {patterns}"
            f"{', may read secrets' if secrets else ''}; it is shown only this once"
        )


@app.command("list")
def list_(
    ctx: typer.Context,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
    output: OutputOption = None,
) -> None:
    """List the tokens (never their secret values)."""
    with open_session(ctx, url, token, output, data_dir) as s:
        found = s.api.get("/v1/tokens")
        columns = ["NAME", "ROLE", "NAMESPACES", "SECRETS", "CREATED", "BY"]
        rows = [
            [
                item["name"],
                item["role"],
                ",".join(item.get("namespaces", [])),
                "yes" if item.get("secrets") else "no",
                item.get("created_at"),
                item.get("created_by"),
            ]
            for item in found["items"]
        ]
        s.out.emit(found, lambda: s.out.table(columns, rows))


@app.command()
def revoke(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The token's name")],
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
    output: OutputOption = None,
) -> None:
    """Revoke a token; it stops working at once on every instance."""
    with open_session(ctx, url, token, output, data_dir) as s:
        result = s.api.request("DELETE", f"/v1/tokens/{name}").json()
        s.out.emit(result, lambda: s.out.line(f"revoked token {name!r}"))
