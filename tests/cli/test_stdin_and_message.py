"""`apply -f -` (documents on standard input) and `apply -m MSG` (the change message of
documents that have none), against a real service."""

from __future__ import annotations

import json

import httpx
from cli.clitools import LIMITS_YAML, MODELS_YAML, Cli


def messages(api: httpx.Client, ref: str) -> list[str | None]:
    """The history messages of `ref`, oldest first."""
    items = api.get(f"/v1/configs/{ref}/history").json()["items"]
    return [row["message"] for row in reversed(items)]


def test_get_edit_apply_through_a_pipe(cli: Cli, api: httpx.Client) -> None:
    cli.write("limits.yaml", LIMITS_YAML)
    assert cli("apply", "-f", "limits.yaml").code == 0
    # configsvc get prod/limits -o yaml | sed 's/burst: 10/burst: 20/' | configsvc apply -f -
    read = cli("get", "prod/limits", "-o", "yaml")
    assert read.code == 0, read
    edited = read.out.replace("burst: 10", "burst: 20")
    applied = cli("apply", "-f", "-", "-m", "raise the burst", input=edited)
    assert applied.code == 0, applied
    assert applied.out.splitlines() == ["updated       prod/limits  version 2  (<stdin>:1)"]
    current = api.get("/v1/configs/prod/limits").json()
    assert current["spec"]["limits"]["chat"]["burst"] == 20
    # a document read back carries its version's message: -m replaces it
    assert messages(api, "prod/limits") == [None, "raise the burst"]
    # JSON works too (`-o json`, one object, or a list as `export -o json` prints)
    as_json = cli("get", "prod/limits", "-o", "json").out.replace('"burst": 20', '"burst": 30')
    assert cli("apply", "-f", "-", input=as_json).code == 0
    exported = cli("export", "prod", "-o", "json").out
    again = cli("apply", "-f", "-", "-o", "json", input=exported)
    assert [(o["name"], o["result"]) for o in json.loads(again.out)] == [("limits", "unchanged")]


def test_several_documents_and_files_with_stdin(cli: Cli, api: httpx.Client) -> None:
    cli.write("models.yaml", MODELS_YAML)
    stdin = LIMITS_YAML + "---\n" + LIMITS_YAML.replace("name: limits", "name: limits-b")
    result = cli("apply", "-f", "models.yaml", "-f", "-", input=stdin)
    assert result.code == 0, result
    assert result.out.splitlines() == [
        "created       prod/chat-models  version 1  (models.yaml:1)",
        "created       prod/limits  version 1  (<stdin>:1)",
        "created       prod/limits-b  version 1  (<stdin>:8)",
    ]
    # diff -f - compares standard input with the service, as apply -f - would write it
    changed = cli("diff", "-f", "-", input=LIMITS_YAML.replace("burst: 10", "burst: 11"))
    assert changed.code == 0 and "+      burst: 11" in changed.out, changed


def test_stdin_failures(cli: Cli, api: httpx.Client) -> None:
    cli("apply", "-f", "-", input="").failed_with(
        "<stdin>: no documents on standard input", "pipe YAML or JSON"
    )
    cli("apply", "-f", "-", input="namespace: prod\nname: x\n\tkind: y\n").failed_with(
        "<stdin>:3: invalid YAML", "YAML indents with spaces, not tabs"
    )
    refused = LIMITS_YAML.replace("burst: 10", "burst: 0")
    cli("apply", "-f", "-", input=refused).failed_with("prod/limits (<stdin>:1): refused")
    for usage in (["-f", "-", "-f", "-"], ["-f", "-", "--watch"]):
        result = cli("apply", *usage, input=LIMITS_YAML)
        assert result.code == 2 and "standard input" in result.err, result
    assert api.get("/v1/configs/prod/limits").status_code == 404


def test_message_is_for_documents_that_have_none(cli: Cli, api: httpx.Client) -> None:
    cli.write("conf/models.yaml", MODELS_YAML)  # has `message: first`
    cli.write("conf/limits.yaml", LIMITS_YAML)  # has none
    result = cli("apply", "-f", "conf", "-m", "from the release pipeline")
    assert result.code == 0, result
    assert messages(api, "prod/chat-models") == ["first"]
    assert messages(api, "prod/limits") == ["from the release pipeline"]
    cli.write("conf/limits.yaml", LIMITS_YAML.replace("burst: 10", "burst: 12"))
    assert cli("apply", "-f", "conf/limits.yaml", "--message", "burst 12").code == 0
    assert messages(api, "prod/limits") == ["from the release pipeline", "burst 12"]
    # without -m, a file with no message writes a version with none
    cli.write("conf/limits.yaml", LIMITS_YAML.replace("burst: 10", "burst: 13"))
    assert cli("apply", "-f", "conf/limits.yaml").code == 0
    assert messages(api, "prod/limits")[-1] is None
