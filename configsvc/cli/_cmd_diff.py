"""`diff` (two versions, or local files against the service) and `rollback`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from configsvc.cli._cmd_docs import RefArgument, YesOption
from configsvc.cli._errors import CliError
from configsvc.cli._files import find_files, load_file
from configsvc.cli._http import doc_path
from configsvc.cli._options import OutputOption, TokenOption, UrlOption
from configsvc.cli._output import Printer
from configsvc.cli._refs import DocRef, parse_ref
from configsvc.cli._session import Session, confirm, open_session
from configsvc.cli._yamldiff import Side, diff_documents, print_diff

VersionOption = Annotated[int | None, typer.Option(min=1, show_default=False)]


def diff(
    ctx: typer.Context,
    ref: Annotated[
        DocRef | None,
        typer.Argument(metavar="[NS/NAME]", parser=parse_ref, help="The document to compare"),
    ] = None,
    from_version: Annotated[
        int | None,
        typer.Option("--from", min=1, help="Old side (default: the version before --to)"),
    ] = None,
    to_version: Annotated[
        int | None, typer.Option("--to", min=1, help="New side (default: the current version)")
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="Compare this file (or folder) with the service"),
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    output: OutputOption = None,
) -> None:
    """Show what changed, as a unified diff of the YAML (secret values masked).

    `diff NS/NAME [--from V] [--to V]` compares two versions; `diff -f FILE` compares
    local files with what the service holds, i.e. what `apply -f FILE` would change.
    """
    if (ref is None) == (file is None):
        raise typer.BadParameter("give either NS/NAME or -f FILE", param_hint="NS/NAME")
    if file is not None and (from_version or to_version):
        raise typer.BadParameter("--from and --to compare versions of NS/NAME, not files")
    with open_session(ctx, url, token, output) as s:
        if ref is not None:
            _diff_versions(s, ref, from_version, to_version)
        else:
            assert file is not None
            _diff_files(s, file)


def _diff_versions(s: Session, ref: DocRef, old: int | None, new: int | None) -> None:
    new_doc: dict[str, Any] = (
        s.api.get(doc_path(ref.namespace, ref.name)) if new is None else _version(s, ref, new)
    )
    to_version = int(new_doc["version"])
    if old is None:
        old = _previous_put(s, ref, to_version)
    old_doc = _version(s, ref, old) if old is not None else None
    lines = diff_documents(
        s.masker,
        _side(old_doc),
        _side(new_doc),
        f"{ref} version {old}" if old is not None else f"{ref} (absent)",
        f"{ref} version {to_version}",
    )
    _report(s.out, ref, old, to_version, lines)


def _previous_put(s: Session, ref: DocRef, before: int) -> int | None:
    """The newest version older than `before` that holds a document (not a delete)."""
    history = s.api.get(doc_path(ref.namespace, ref.name, "history"))["items"]
    older = [row for row in history if row["version"] < before]
    if not older:
        return None
    newest = max(older, key=lambda row: int(row["version"]))
    return None if newest["action"] == "delete" else int(newest["version"])


def _version(s: Session, ref: DocRef, version: int) -> dict[str, Any]:
    found: dict[str, Any] = s.api.get(doc_path(ref.namespace, ref.name, "versions", version))
    return found


def _masked(s: Session, document: dict[str, Any]) -> dict[str, Any]:
    """`document` with its secret values shown as `****` (rollback never shows them)."""
    return {**document, "spec": s.masker.mask(document["kind"], document.get("spec"))}


def _side(document: dict[str, Any] | None) -> Side | None:
    return (document["kind"], document.get("spec")) if document is not None else None


def _report(out: Printer, ref: DocRef, old: int | None, new: int | None, lines: list[str]) -> None:
    value = {
        "namespace": ref.namespace,
        "name": ref.name,
        "from_version": old,
        "to_version": new,
        "changed": bool(lines),
        "diff": lines,
    }
    if not lines and out.is_table:
        out.note(f"{ref}: no differences")
    out.emit(value, lambda: print_diff(out, lines))


def _diff_files(s: Session, root: Path) -> None:
    results = []
    for path in find_files(root):
        for local in load_file(path):
            ref = local.ref()
            current = s.api.get_optional(doc_path(ref.namespace, ref.name))
            kind = local.body.get("kind")
            if not isinstance(kind, str):
                raise CliError(f"{local.where}: the document has no kind")
            lines = diff_documents(
                s.masker,
                _side(current),
                (kind, local.body.get("spec")),
                f"{ref} (service, version {current['version']})"
                if current
                else f"{ref} (not on the service)",
                f"{ref} ({local.where})",
            )
            results.append((ref, current, lines))
    if s.out.is_table:
        for ref, _current, lines in results:
            if not lines:
                s.out.note(f"{ref}: no differences")
            print_diff(s.out, lines)
        return
    s.out.data(
        [
            {
                "namespace": ref.namespace,
                "name": ref.name,
                "from_version": current["version"] if current else None,
                "changed": bool(lines),
                "diff": lines,
            }
            for ref, current, lines in results
        ]
    )


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
    output: OutputOption = None,
) -> None:
    """Write a new version whose spec equals an earlier one (shows the diff and asks first)."""
    if (to is None) == (steps is None):
        raise typer.BadParameter("give exactly one of --to V and --steps N", param_hint="--to")
    with open_session(ctx, url, token, output) as s:
        history = s.api.get(doc_path(ref.namespace, ref.name, "history"))["items"]
        latest = max(row["version"] for row in history)
        target = to if to is not None else latest - (steps or 0)
        if target < 1:
            raise CliError(f"{ref} has no version {steps} steps before version {latest}")
        if target == latest:
            raise CliError(f"version {target} is the current version of {ref}")
        old_doc = _version(s, ref, target)
        current = s.api.get_optional(doc_path(ref.namespace, ref.name))
        lines = diff_documents(
            s.masker,
            _side(current),
            _side(old_doc),
            f"{ref} version {latest} (current)",
            f"{ref} version {target}",
        )
        if current is not None and not lines:
            s.out.note(f"{ref}: version {target} equals the current version; nothing to do")
            s.out.emit(_masked(s, current), lambda: None)
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
            _masked(s, result),
            lambda: s.out.line(
                f"rolled back {ref} to version {target}: now version {result['version']}"
            ),
        )
