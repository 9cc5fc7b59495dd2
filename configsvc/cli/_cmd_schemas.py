"""`schemas [--export DIR [--spec]] | apply -f FILE|DIR [--dry-run] | delete KIND [--yes]
| history KIND`: the kinds, JSON Schema files for editors and code generators, and user kinds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from configsvc_schemas.wire import KIND_NAME_RULE, NAME_PATTERN, is_valid_kind_name, schema_path

from configsvc.cli._applier import Applier
from configsvc.cli._cmd_apply import Reporter, check_sources
from configsvc.cli._errors import CliError
from configsvc.cli._files import find_files
from configsvc.cli._options import DataDirOption, OutputOption, TokenOption, UrlOption
from configsvc.cli._session import confirm, flags_of, open_session

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SERVICE_FIELDS = ("version", "revision", "updated_at", "updated_by")
"""Fields `get -o yaml` prints and `apply` accepts (and ignores), so they are allowed."""
SPEC_DEF = "spec"
"""Where an exported document schema keeps a spec schema that refers to its own root."""

app = typer.Typer(
    help="The kinds: list them, export their JSON Schemas, register or delete user kinds.",
    invoke_without_command=True,
)


@app.callback()
def schemas(
    ctx: typer.Context,
    export: Annotated[
        Path | None,
        typer.Option("--export", metavar="DIR", help="Write <Kind>.json files of whole documents"),
    ] = None,
    spec: Annotated[
        bool,
        typer.Option("--spec", help="With --export: the spec's schema alone (for code generators)"),
    ] = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
    output: OutputOption = None,
) -> None:
    """List the kinds the service knows, or export their JSON Schemas.

    An exported file describes a whole document file (namespace, name, kind, spec,
    message), so that an editor can check it: start a YAML file with
    `# yaml-language-server: $schema=DIR/ModelEndpoints.json`. With --spec, each file is
    the spec's JSON Schema as the service has it (e.g. for datamodel-code-generator).
    """
    ctx.obj = flags_of(ctx, url, token, output, data_dir)
    if ctx.invoked_subcommand is not None:
        return
    with open_session(ctx, None, None, None) as s:
        items = s.api.get("/v1/schemas").get("items", [])
        if export is None:
            rows = [
                [
                    item["kind"],
                    "yes" if item.get("builtin") else "no",
                    item.get("version", ""),
                    item.get("description") or item["schema"].get("description", ""),
                ]
                for item in items
            ]
            columns = ["KIND", "BUILTIN", "VERSION", "DESCRIPTION"]
            s.out.emit({"items": items}, lambda: s.out.table(columns, rows))
            return
        try:
            export.mkdir(parents=True, exist_ok=True)
            written = []
            for item in items:
                kind, schema = item["kind"], item["schema"]
                path = export / f"{kind}.json"
                content = schema if spec else document_schema(kind, schema)
                path.write_text(json.dumps(content, indent=2) + "\n")
                written.append(str(path))
        except OSError as exc:
            raise CliError(f"cannot write to {export}: {exc.strerror or exc}") from None
        s.out.emit({"written": written}, lambda: s.out.table(["WRITTEN"], [[p] for p in written]))


@app.command("apply")
def apply_kinds(
    ctx: typer.Context,
    files: Annotated[
        list[Path],
        typer.Option(
            "--file", "-f", help="A kind file (YAML/JSON), a folder of them, or - for stdin"
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check on the service; store nothing")
    ] = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
    output: OutputOption = None,
) -> None:
    """Register or replace user kinds from files with top-level `kind`, `schema` and an
    optional `description` (and `message`). The service refuses a schema that a stored
    document of the kind would not fit, naming each document."""
    check_sources(files)
    with open_session(ctx, url, token, output, data_dir) as s:
        applier = Applier(s.api, dry_run=dry_run)
        report = Reporter(s.out, stream=False)
        paths = [path for root in files for path in find_files(root)]
        for outcome in applier.apply_files(paths, kinds_only=True):
            report(outcome)
        report.finish()


@app.command("delete")
def delete_kind(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(help="The user kind to delete")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask")] = False,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
    output: OutputOption = None,
) -> None:
    """Delete a user kind (refused while any document has it)."""
    if not is_valid_kind_name(kind):
        raise typer.BadParameter(f"{kind!r} is not a kind name: {KIND_NAME_RULE}")
    with open_session(ctx, url, token, output, data_dir) as s:
        if not yes:
            confirm(f"delete kind {kind}?")
        s.api.request("DELETE", schema_path(kind))
        s.out.emit({"kind": kind, "deleted": True}, lambda: s.out.line(f"deleted kind {kind}"))


@app.command("history")
def kind_history(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(help="A user kind")],
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
    output: OutputOption = None,
) -> None:
    """The versions of a user kind, newest first."""
    if not is_valid_kind_name(kind):
        raise typer.BadParameter(f"{kind!r} is not a kind name: {KIND_NAME_RULE}")
    with open_session(ctx, url, token, output, data_dir) as s:
        found = s.api.get(f"{schema_path(kind)}/history")
        columns = ["VERSION", "ACTION", "UPDATED", "BY", "MESSAGE"]
        rows = [
            [h["version"], h["action"], h["updated_at"], h["updated_by"], h.get("message") or ""]
            for h in found["items"]
        ]
        s.out.emit(found, lambda: s.out.table(columns, rows))


def document_schema(kind: str, spec_schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON Schema for a whole document of `kind`.

    The spec's `$defs` move to the root when every reference points into them (the
    built-ins); a spec schema that refers elsewhere in itself (`#`, recursion) is kept whole
    under `$defs/spec`, its references rewritten to point there.
    """
    refs = list(_refs(spec_schema))
    nested = any(not ref.startswith("#/$defs/") for ref in refs if ref.startswith("#"))
    name = {"type": "string", "pattern": f"^{NAME_PATTERN.pattern}$"}
    defs: dict[str, Any] = {}
    if nested:
        inner = {k: v for k, v in spec_schema.items() if k not in ("$schema", "$id")}
        defs[SPEC_DEF] = _rebase(inner, f"#/$defs/{SPEC_DEF}")
        spec: dict[str, Any] = {"$ref": f"#/$defs/{SPEC_DEF}"}
    else:
        spec = {k: v for k, v in spec_schema.items() if k not in ("$defs", "$schema", "$id")}
        defs = dict(spec_schema.get("$defs", {}))
    properties: dict[str, Any] = {
        "namespace": {**name, "description": "the document's namespace"},
        "name": {**name, "description": "the document's name within its namespace"},
        "kind": {"const": kind},
        "spec": spec,
        "message": {"type": ["string", "null"], "description": "kept in the history"},
    }
    properties.update({field: {"description": "set by the service"} for field in SERVICE_FIELDS})
    schema: dict[str, Any] = {
        "$schema": SCHEMA_DIALECT,
        "title": f"configsvc {kind} document",
        "type": "object",
        "required": ["namespace", "name", "kind", "spec"],
        "properties": properties,
        "additionalProperties": False,
    }
    if defs:
        schema["$defs"] = defs
    return schema


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def _rebase(node: Any, base: str) -> Any:
    """`node` with each local JSON-pointer `$ref` (`#`, `#/…`) made relative to `base`."""
    if isinstance(node, dict):
        rebased = {key: _rebase(value, base) for key, value in node.items()}
        ref = node.get("$ref")
        if isinstance(ref, str) and (ref == "#" or ref.startswith("#/")):
            rebased["$ref"] = base + ref[1:]
        return rebased
    if isinstance(node, list):
        return [_rebase(value, base) for value in node]
    return node
