"""`reclaim` and `audit`: giving etcd space back, and who changed what (admin token)."""

from __future__ import annotations

from typing import Annotated

import typer

from configsvc.cli._cmd_docs import YesOption
from configsvc.cli._options import DataDirOption, OutputOption, TokenOption, UrlOption
from configsvc.cli._session import confirm, open_session


def reclaim(
    ctx: typer.Context,
    keep: Annotated[
        int, typer.Option("--keep", min=1, help="Versions of history kept per document")
    ],
    yes: YesOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
    output: OutputOption = None,
) -> None:
    """Trim every document's history to its last N versions and give the space back.

    Then compacts and defragments etcd and clears its NOSPACE alarm. Works while the store
    is full."""
    with open_session(ctx, url, token, output, data_dir) as s:
        if not yes:
            confirm(f"Remove all but the last {keep} versions of every document's history?")
        result = s.api.request("POST", "/v1/admin/reclaim", body={"keep_versions": keep}).json()
        s.out.emit(
            result,
            lambda: s.out.line(
                f"removed {result['versions_removed']} versions, freed "
                f"{result['freed_bytes']:,} bytes; etcd's database is "
                f"{result['db_bytes']:,} bytes"
            ),
        )


def audit(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option("--since", help="From this RFC 3339 time on, e.g. 2026-12-01T00:00:00Z"),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many")] = 1000,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
    output: OutputOption = None,
) -> None:
    """Every change: documents, tokens, kinds, reclaims (who, when, what, from where)."""
    with open_session(ctx, url, token, output, data_dir) as s:
        params: dict[str, str | int] = {"limit": limit}
        if since:
            params["since"] = since
        items = s.api.get("/v1/audit", params=params)["items"]
        rows = [
            [
                item["at"],
                item["by"],
                item.get("origin") or "",
                item["action"],
                item["target"] + (f" v{item['version']}" if item.get("version") else ""),
                item.get("message") or "",
            ]
            for item in items
        ]
        s.out.emit(
            {"items": items},
            lambda: s.out.table(["AT", "BY", "FROM", "ACTION", "TARGET", "MESSAGE"], rows),
        )
