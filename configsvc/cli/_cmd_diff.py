"""`diff`: two versions of a document, or local files against the service."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from configsvc.cli._errors import CliError
from configsvc.cli._files import find_files, load_file
from configsvc.cli._http import doc_path
from configsvc.cli._options import DataDirOption, OutputOption, TokenOption, UrlOption
from configsvc.cli._output import Printer
from configsvc.cli._refs import DocRef, parse_ref
from configsvc.cli._session import Session, open_session
from configsvc.cli._yamldiff import Side, diff_documents, print_diff


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
        typer.Option(
            "--file", "-f", help="Compare this file (or folder, or - for stdin) with the service"
        ),
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
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
    with open_session(ctx, url, token, output, data_dir) as s:
        if ref is not None:
            _diff_versions(s, ref, from_version, to_version)
        else:
            assert file is not None
            _diff_files(s, file)


def _diff_versions(s: Session, ref: DocRef, old: int | None, new: int | None) -> None:
    new_doc: dict[str, Any] = (
        s.api.get(doc_path(ref.namespace, ref.name)) if new is None else fetch_version(s, ref, new)
    )
    to_version = int(new_doc["version"])
    if old is None:
        old = _previous_put(s, ref, to_version)
    old_doc = fetch_version(s, ref, old) if old is not None else None
    lines = diff_documents(
        s.masker,
        side(old_doc),
        side(new_doc),
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


def fetch_version(s: Session, ref: DocRef, version: int) -> dict[str, Any]:
    """The document as it was at `version` (404 for a deletion or an unknown version)."""
    found: dict[str, Any] = s.api.get(doc_path(ref.namespace, ref.name, "versions", version))
    return found


def masked(s: Session, document: dict[str, Any]) -> dict[str, Any]:
    """`document` with its secret values shown as `****` (rollback never shows them)."""
    return {**document, "spec": s.masker.mask(document["kind"], document.get("spec"))}


def side(document: dict[str, Any] | None) -> Side | None:
    """What a diff compares of `document`: its kind and spec (None: absent)."""
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
                side(current),
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
