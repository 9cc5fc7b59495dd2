"""`rollback`: write a new version equal to an earlier one, after showing the diff."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from configsvc.cli._cmd_diff import fetch_version, masked, side
from configsvc.cli._cmd_docs import RefArgument, YesOption
from configsvc.cli._errors import CliError
from configsvc.cli._http import doc_path
from configsvc.cli._options import DataDirOption, OutputOption, TokenOption, UrlOption
from configsvc.cli._output import Printer
from configsvc.cli._session import confirm, open_session
from configsvc.cli._yamldiff import diff_documents, print_diff


def rollback(
    ctx: typer.Context,
    ref: RefArgument,
    to: Annotated[int | None, typer.Option("--to", min=1, help="The version to go back to")] = None,
    steps: Annotated[
        int | None,
        typer.Option("--steps", min=1, help="Go back N versions (1: the one before the current)"),
    ] = None,
    message: Annotated[
        str | None, typer.Option("--message", "-m", help="Kept in the history")
    ] = None,
    yes: YesOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
    output: OutputOption = None,
) -> None:
    """Write a new version whose spec equals an earlier one (shows the diff and asks first)."""
    if (to is None) == (steps is None):
        raise typer.BadParameter("give exactly one of --to V and --steps N", param_hint="--to")
    with open_session(ctx, url, token, output, data_dir) as s:
        history = s.api.get(doc_path(ref.namespace, ref.name, "history"))["items"]
        current = s.api.get_optional(doc_path(ref.namespace, ref.name))
        # the current version (an aborted rollout's candidate may be newer), else the delete
        latest = current["version"] if current else max(row["version"] for row in history)
        target = to if to is not None else latest - (steps or 0)
        if target < 1:
            raise CliError(f"{ref} has no version {steps} steps before version {latest}")
        if target == latest:
            raise CliError(f"version {target} is the current version of {ref}")
        old_doc = fetch_version(s, ref, target)
        lines = diff_documents(
            s.masker,
            side(current),
            side(old_doc),
            f"{ref} version {latest} (current)" if current else f"{ref} (deleted)",
            f"{ref} version {target}",
        )
        if current is not None and not lines:
            s.out.note(f"{ref}: version {target} equals the current version; nothing to do")
            s.out.emit(masked(s, current), lambda: None)
            return
        if s.out.is_table or not yes:
            preview = s.out if s.out.is_table else Printer(s.out.fmt, stdout=s.out.err)
            print_diff(preview, lines)
        if not yes:
            confirm(f"Roll {ref} back to version {target}?")
        body: dict[str, Any] = {"to_version": target}
        if message:
            body["message"] = message
        result = s.api.request(
            "POST", doc_path(ref.namespace, ref.name, "rollback"), body=body
        ).json()
        s.out.emit(
            masked(s, result),
            lambda: s.out.line(
                f"rolled back {ref} to version {target}: now version {result['version']}"
            ),
        )
