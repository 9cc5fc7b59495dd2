"""`schemas [--export DIR]`: the kinds, or one JSON Schema file per kind for editors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from configsvc_schemas.wire import NAME_PATTERN

from configsvc.cli._errors import CliError
from configsvc.cli._options import OutputOption, TokenOption, UrlOption
from configsvc.cli._session import load_schemas, open_session

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SERVICE_FIELDS = ("version", "revision", "updated_at", "updated_by")
"""Fields `get -o yaml` prints and `apply` accepts (and ignores), so they are allowed."""


def schemas(
    ctx: typer.Context,
    export: Annotated[
        Path | None,
        typer.Option("--export", metavar="DIR", help="Write <Kind>.json files of whole documents"),
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    output: OutputOption = None,
) -> None:
    """List the kinds the service knows, or export their JSON Schemas.

    An exported file describes a whole document file (namespace, name, kind, spec,
    message), so that an editor can check it: start a YAML file with
    `# yaml-language-server: $schema=DIR/ModelEndpoints.json`.
    """
    with open_session(ctx, url, token, output) as s:
        found = load_schemas(s.api)
        if export is None:
            rows = [[kind, schema.get("description", "")] for kind, schema in found.items()]
            items = [{"kind": kind, "schema": schema} for kind, schema in found.items()]
            s.out.emit({"items": items}, lambda: s.out.table(["KIND", "DESCRIPTION"], rows))
            return
        try:
            export.mkdir(parents=True, exist_ok=True)
            written = []
            for kind, schema in found.items():
                path = export / f"{kind}.json"
                path.write_text(json.dumps(document_schema(kind, schema), indent=2) + "\n")
                written.append(str(path))
        except OSError as exc:
            raise CliError(f"cannot write to {export}: {exc.strerror or exc}") from None
        s.out.emit({"written": written}, lambda: s.out.table(["WRITTEN"], [[p] for p in written]))


def document_schema(kind: str, spec_schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON Schema for a whole document of `kind`, with the spec's `$defs` at the root."""
    spec = {key: value for key, value in spec_schema.items() if key != "$defs"}
    name = {"type": "string", "pattern": f"^{NAME_PATTERN.pattern}$"}
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
    if "$defs" in spec_schema:
        schema["$defs"] = spec_schema["$defs"]
    return schema
