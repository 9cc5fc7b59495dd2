"""docs/cli.md stays true: its `sh` blocks (and the files they use) run against a service."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from cli.clitools import CONFIGSVC, Cli

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
FENCE = re.compile(r"^```(?P<info>[^\n]*)\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)
SCRIPT_TIMEOUT = 120.0


def doc_script(text: str) -> str:
    """The `sh` blocks in order, with each `yaml file=PATH` block written to its file first."""
    parts = ["set -euo pipefail"]
    for match in FENCE.finditer(text):
        info, body = match["info"].split(), match["body"]
        if info[:1] == ["sh"]:
            parts.append(body)
        elif info[:1] == ["yaml"] and len(info) > 1 and info[1].startswith("file="):
            path = info[1].removeprefix("file=")
            parts.append(f"mkdir -p \"$(dirname {path})\"\ncat > {path} <<'EOF'\n{body}EOF")
    return "\n".join(parts) + "\n"


def test_the_cli_guide_runs(cli: Cli) -> None:
    script = doc_script(DOC.read_text())
    assert script.count("configsvc ") > 20
    env = {**cli.env, "PATH": f"{Path(CONFIGSVC).parent}{os.pathsep}{cli.env['PATH']}"}
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=cli.cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert (
        "created       prod/chat-models  version 1  (conf/prod/chat-models.yaml:2)" in done.stdout
    )
    assert "+      api_key: ****  (changed)" in done.stdout
    assert "rolled back prod/chat-models to version 1: now version 3" in done.stdout
    for secret in ("sk-example-not-a-real-key", "sk-rotated-example"):
        assert secret not in done.stdout + done.stderr
    assert (cli.cwd / "schemas" / "ModelEndpoints.json").exists()
