"""`promote SRC DST`: copy documents between namespaces, after showing the diff.

The service does the copying (`POST /v1/promote`), so secret values never pass through
this command: the diff shows them as `****`, marked `(changed)` where the service says they
differ. The dry run's revisions become the compare-and-set of the real run: a target or
source that moved in between is not written, and the command says so.
"""

from __future__ import annotations

import copy
from typing import Annotated, Any

import typer
from configsvc_schemas.wire import API_PREFIX

from configsvc.cli._cmd_docs import YesOption
from configsvc.cli._errors import CliError
from configsvc.cli._options import DataDirOption, OutputOption, TokenOption, UrlOption
from configsvc.cli._output import Printer
from configsvc.cli._refs import parse_namespace
from configsvc.cli._secrets import SecretMasker
from configsvc.cli._session import Session, confirm, open_session
from configsvc.cli._yamldiff import Side, diff_documents, print_diff

PROMOTE_PATH = f"{API_PREFIX}/promote"
WOULD_CHANGE = frozenset({"would_create", "would_update"})
FAILED = frozenset({"conflict", "refused", "missing", "failed", "skipped"})
_BEFORE, _AFTER = "\0configsvc-secret-before", "\0configsvc-secret-after"
"""Stand-ins for two different secret values, so that the diff marks the line changed."""


def promote(
    ctx: typer.Context,
    source: Annotated[
        str, typer.Argument(metavar="SRC", parser=parse_namespace, help="The source namespace")
    ],
    target: Annotated[
        str, typer.Argument(metavar="DST", parser=parse_namespace, help="The target namespace")
    ],
    names: Annotated[
        list[str] | None,
        typer.Option("--name", "-n", help="Only this document (repeatable; default: all)"),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would change; write nothing")
    ] = False,
    message: Annotated[
        str | None, typer.Option("--message", "-m", help="Added to each history message")
    ] = None,
    yes: YesOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
    output: OutputOption = None,
) -> None:
    """Copy the documents of SRC into DST (shows the diff and asks first).

    Each target is written by compare-and-set against what the diff showed, with the history
    message "promoted from SRC/NAME version V". Secrets are copied by the service and never
    shown. Documents only in DST stay. Exit status 1 if any document was not promoted.
    """
    if source == target:
        raise typer.BadParameter("SRC and DST are the same namespace", param_hint="DST")
    with open_session(ctx, url, token, output, data_dir) as s:
        request: dict[str, Any] = {"from": source, "to": target}
        if names:
            request["names"] = names
        if message:
            request["message"] = message
        plan = s.api.request("POST", PROMOTE_PATH, body={**request, "dry_run": True}).json()
        items: list[dict[str, Any]] = plan["items"]
        diffs = {item["name"]: _diff(s.masker, source, target, item) for item in items}
        changes = [item for item in items if item["result"] in WOULD_CHANGE]
        if s.out.is_table or not (yes or dry_run):  # people see the diff before deciding
            preview = s.out if s.out.is_table else Printer(s.out.fmt, stdout=s.out.err)
            for item in items:
                print_diff(preview, diffs[item["name"]])
        if dry_run or not changes:
            if not changes and all(item["result"] == "unchanged" for item in items):
                s.out.note(f"nothing to promote: {target} already matches {source}")
            _finish(s, plan, diffs)
            return
        if not yes:
            confirm(f"Promote {len(changes)} document(s) from {source} to {target}?")
        request["names"] = [item["name"] for item in changes]
        request["if_match"] = {
            item["name"]: item["target"]["revision"] if item["target"] else 0 for item in changes
        }
        request["source_versions"] = {item["name"]: item["source"]["version"] for item in changes}
        done = s.api.request("POST", PROMOTE_PATH, body=request).json()
        written = {item["name"]: item for item in done["items"]}
        merged = [written.get(item["name"], item) for item in items]
        _finish(s, {**done, "items": merged}, diffs)


def _diff(masker: SecretMasker, source: str, target: str, item: dict[str, Any]) -> list[str]:
    """The masked diff from the target as it is to what promotion writes."""
    if item["result"] not in WOULD_CHANGE:
        return []
    before, after = _side(item["before"]), _side(item["after"])
    for loc in item.get("changed_secrets") or []:
        _set_at(before, loc, _BEFORE)
        _set_at(after, loc, _AFTER)
    name = item["name"]
    target_version = item["target"]["version"] if item["target"] else None
    return diff_documents(
        masker,
        before,
        after,
        f"{target}/{name} version {target_version}" if before else f"{target}/{name} (absent)",
        f"{source}/{name} version {item['source']['version']}",
    )


def _side(side: dict[str, Any] | None) -> Side | None:
    """A copy of an answer's side (the stand-ins must not reach the printed answer)."""
    return (side["kind"], copy.deepcopy(side["spec"])) if side is not None else None


def _set_at(side: Side | None, loc: list[str], value: str) -> None:
    """Put `value` at `loc` (`["spec", key, …]`) of `side`'s spec, where there is a value."""
    if side is None or not loc or loc[0] != "spec":
        return
    node: Any = side[1]
    for key in loc[1:-1]:
        node = node[int(key)] if isinstance(node, list) else node.get(key)
        if not isinstance(node, dict | list):
            return
    last = loc[-1]
    if isinstance(node, dict) and last in node:
        node[last] = value
    elif isinstance(node, list) and last.isdigit() and int(last) < len(node):
        node[int(last)] = value


def _describe(source: str, target: str, item: dict[str, Any]) -> str:
    """One line per document, e.g. `updated       prod/models  version 4  (from staging v7)`."""
    name, result = item["name"], item["result"]
    if result in FAILED:
        reason = (item.get("error") or {}).get("message", "")
        if result == "conflict":
            reason += "; nothing written for it: run promote again to see the new diff"
        return f"{target}/{name}: {result.replace('_', ' ')}: {reason}"
    origin = f"  (from {source}/{name} version {item['source']['version']})"
    version = f"  version {item['version']}" if item.get("version") else ""
    return f"{result.replace('_', ' '):<12}  {target}/{name}{version}{origin}"


def _finish(s: Session, answer: dict[str, Any], diffs: dict[str, list[str]]) -> None:
    """Each document's outcome (a line for people; the answer, with each diff, for tools),
    then `CliError` if any was not promoted."""
    items = answer["items"]
    failed = [item for item in items if item["result"] in FAILED]
    for item in items:
        line = _describe(answer["from"], answer["to"], item)
        if item["result"] in FAILED:
            s.out.warn(line)
        elif s.out.is_table:
            s.out.line(line)
    if not s.out.is_table:
        with_diffs = [{**item, "diff": diffs.get(item["name"], [])} for item in items]
        s.out.data({**answer, "items": with_diffs})
    if failed and len(items) > 1:
        raise CliError(f"{len(failed)} of {len(items)} documents not promoted")
    if failed:
        raise typer.Exit(1)  # its one line is out already
