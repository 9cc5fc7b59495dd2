"""User kinds on the command line: `schemas apply | delete | history`, the BUILTIN column,
`apply -f DIR` with kind files first, and the example folder `examples/kinds`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from textwrap import dedent
from typing import Any

import httpx
from cli.clitools import Cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "kinds"

NOTES_KIND = dedent(
    """\
    kind: Notes
    description: free notes with a priority
    schema:
      type: object
      additionalProperties: false
      properties:
        text: {type: string}
        priority: {type: integer, minimum: 1, maximum: PRIORITY_MAX}
    """
)
NOTE_DOC = dedent(
    """\
    namespace: prod
    name: note
    kind: Notes
    spec: {text: hello, priority: 5}
    """
)


def test_example_folder_applies_kinds_first_and_is_idempotent(cli: Cli, api: httpx.Client) -> None:
    folder = cli.cwd / "gitops"
    shutil.copytree(EXAMPLES, folder)
    first = cli("apply", "-f", str(folder))
    assert first.code == 0, first
    lines = first.out.splitlines()
    kinds = [i for i, line in enumerate(lines) if "kind " in line]
    docs = [i for i, line in enumerate(lines) if "prod/" in line]
    assert len(kinds) == 2 and len(docs) == 2 and max(kinds) < min(docs), first.out
    assert all(line.startswith("created") for line in lines), first.out
    again = cli("apply", "-f", str(folder), "-o", "json")
    assert {item["result"] for item in json.loads(again.out)} == {"unchanged"}
    assert api.get("/v1/configs/prod/mcp-servers").json()["spec"]["servers"]["search"]["token"] == (
        "mcp-search-token-example"
    )
    listed = cli("schemas")
    rows = {line.split()[0]: line.split()[1] for line in listed.out.splitlines()[1:]}
    assert rows == {
        "AgentRoles": "no",
        "AuthKeys": "yes",
        "McpServers": "no",
        "ModelEndpoints": "yes",
        "RateLimits": "yes",
    }


def test_secrets_of_user_kinds_are_masked_by_the_cli(cli: Cli, service: Any) -> None:
    cli("apply", "-f", str(EXAMPLES))
    shown = cli("get", "prod/mcp-servers", "-o", "json")
    assert shown.code == 0 and "mcp-search-token-example" not in shown.out
    assert json.loads(shown.out)["spec"]["servers"]["search"]["token"] == "****"
    clear = cli("get", "prod/mcp-servers", "--show-secrets", "-o", "json")
    assert "mcp-search-token-example" in clear.out


def test_schemas_apply_dry_run_refusal_and_delete(cli: Cli, api: httpx.Client) -> None:
    cli.write("kinds/notes.yaml", NOTES_KIND.replace("PRIORITY_MAX", "10"))
    dry = cli("schemas", "apply", "-f", "kinds", "--dry-run")
    assert dry.code == 0 and dry.out.startswith("would create"), dry
    assert api.get("/v1/schemas/Notes").status_code == 404
    assert cli("schemas", "apply", "-f", "kinds").out.startswith("created")
    cli.write("note.yaml", NOTE_DOC)
    assert cli("apply", "-f", "note.yaml").code == 0
    # a stricter schema would strand the stored note: refused, naming it and its field
    cli.write("kinds/notes.yaml", NOTES_KIND.replace("PRIORITY_MAX", "3"))
    refused = cli("schemas", "apply", "-f", "kinds")
    refused.failed_with("refused", "prod/note spec.priority", "must be <= 3")
    # a document is not a kind file
    cli("schemas", "apply", "-f", "note.yaml").failed_with("not a kind file")
    history = cli("schemas", "history", "Notes", "-o", "json")
    assert [h["version"] for h in json.loads(history.out)["items"]] == [1]
    cli("schemas", "delete", "Notes", "--yes").failed_with("conflict", "prod/note")
    assert cli("delete", "prod/note", "--yes").code == 0
    deleted = cli("schemas", "delete", "Notes", "--yes")
    assert deleted.code == 0 and "deleted kind Notes" in deleted.out
    cli("schemas", "delete", "ModelEndpoints", "--yes").failed_with("conflict", "built-in")
    assert cli("schemas", "delete", "not-a-kind", "--yes").code == 2


def test_export_for_code_generators(cli: Cli, tmp_path: Path) -> None:
    cli("apply", "-f", str(EXAMPLES))
    result = cli("schemas", "--export", "spec-schemas", "--spec")
    assert result.code == 0, result
    exported = json.loads((cli.cwd / "spec-schemas" / "McpServers.json").read_text())
    assert exported["$defs"]["server"]["properties"]["token"]["x-configsvc-secret"] is True
    whole = cli("schemas", "--export", "editor")
    assert whole.code == 0
    document = json.loads((cli.cwd / "editor" / "AgentRoles.json").read_text())
    assert document["properties"]["kind"] == {"const": "AgentRoles"}
    assert document["properties"]["spec"]["properties"]["roles"]["additionalProperties"] == {
        "$ref": "#/$defs/role"
    }


def test_diff_and_history_of_a_user_kind_document_mask_its_secrets(cli: Cli) -> None:
    folder = cli.cwd / "gitops"
    shutil.copytree(EXAMPLES, folder)
    assert cli("apply", "-f", str(folder)).code == 0
    path = folder / "prod" / "mcp-servers.yaml"
    path.write_text(
        path.read_text()
        .replace("mcp-search-token-example", "mcp-search-token-rotated")
        .replace("max_retries: 3", "max_retries: 5")
    )
    assert cli("apply", "-f", str(path)).code == 0
    diff = cli("diff", "prod/mcp-servers", "--from", "1", "--to", "2")
    assert diff.code == 0, diff
    assert "max_retries: 5" in diff.out and "(changed)" in diff.out
    assert "mcp-search-token" not in diff.out
    history = cli("history", "prod/mcp-servers")
    assert history.code == 0 and "mcp-search-token" not in history.out
