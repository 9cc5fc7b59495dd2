"""The README's curl tour, run against a real service, so that it cannot rot."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support import RunningService

README = Path(__file__).resolve().parent.parent / "README.md"
TOUR_HEADING = "## A five-minute tour with curl"


def tour_blocks() -> list[str]:
    text = README.read_text()
    tour = text[text.index(TOUR_HEADING) :].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", tour, flags=re.S)


def json_values(text: str) -> list[dict[str, object]]:
    """The JSON values printed one after another (curl adds no newline between them)."""
    decoder = json.JSONDecoder()
    values, index = [], 0
    while index < len(text.rstrip()):
        value, index = decoder.raw_decode(text, index)
        values.append(value)
        while index < len(text) and text[index].isspace():
            index += 1
    return values


def run(script: str, service: RunningService, token_file: Path) -> str:
    host = service.url.removeprefix("http://")
    script = script.replace("localhost:8080", host)
    script = script.replace("~/.local/share/configsvc/admin.token", str(token_file))
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.skipif(
    subprocess.run(["which", "curl"], capture_output=True, check=False).returncode != 0,
    reason="curl is not installed",
)
def test_readme_tour(service: RunningService, tmp_path: Path) -> None:
    token_file = tmp_path / "admin.token"
    token_file.write_text(service.admin_token)
    blocks = tour_blocks()
    assert len(blocks) == 6
    setup, put, get, refused, change, watch = blocks
    watch = watch.strip().replace("curl -sN", "curl -sN --max-time 1") + " || true"

    created = json.loads(run(setup + put, service, token_file))
    assert created["version"] == 1 and created["spec"]["default"] == "local-34b"
    fetched = json.loads(run(setup + get, service, token_file))
    assert fetched["revision"] == created["revision"]

    error = json.loads(run(setup + refused, service, token_file))["error"]
    assert error["code"] == "validation_failed"
    locs = [detail["loc"] for detail in error["details"]]
    assert ["spec", "endpoints", "a", "base_url"] in locs
    assert ["spec", "endpoints", "a", "timeout", "read"] in locs

    changed, history, rolled_back = json_values(run(setup + change, service, token_file))
    assert changed["version"] == 2
    assert [row["version"] for row in history["items"]] == [2, 1]
    assert rolled_back["version"] == 3 and rolled_back["rolled_back_to"] == 1
    assert rolled_back["spec"]["endpoints"]["local-34b"]["timeout"]["read"] == 600

    stream = run(setup + watch, service, token_file)
    assert "event: snapshot" in stream


CLI_HEADING = "## The same with the CLI"


def test_readme_cli_tour(service: RunningService, tmp_path: Path) -> None:
    text = README.read_text()
    section = text[text.index(CLI_HEADING) :].split("\n## ", 1)[0]
    (block,) = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    repo = README.parent
    # A second version to roll back from, and every command must succeed.
    script = "configsvc apply -f examples/llm_gateway/config/\n" + block
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "CONFIGSVC_URL": service.url,
        "CONFIGSVC_TOKEN": service.admin_token,
        "HOME": str(tmp_path),
    }
    with service.client() as api:
        api.put(
            "/v1/configs/prod/chat-models",
            json={
                "kind": "ModelEndpoints",
                "spec": {
                    "default": "a",
                    "endpoints": {"a": {"base_url": "http://127.0.0.1:1/v1", "model": "m"}},
                },
            },
        )
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=repo,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "sk-hosted-demo" not in result.stdout
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("cst.gateway.")
