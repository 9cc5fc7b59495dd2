"""Every `python` block of docs/sdk.md runs, in order, against a real service."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from support import RunningService

from tests.sdk.helpers import limits, put

DOC = Path(__file__).resolve().parents[2] / "docs" / "sdk.md"
BLOCK = re.compile(
    r"(?:<!-- file: (?P<file>\S+) -->\n)?```(?P<info>[^\n]*)\n(?P<body>.*?)```", re.S
)
MODELS = {
    "default": "local-34b",
    "fallbacks": ["hosted"],
    "endpoints": {
        "local-34b": {
            "base_url": "http://127.0.0.1:1234/v1",
            "model": "codebooga-34b",
            "timeout": {"read": 600},
        },
        "hosted": {"base_url": "https://api.example.com/v1", "model": "big", "api_key": "sk-x"},
    },
}


def test_every_python_block_of_the_sdk_doc_runs(
    sdk_service: RunningService,
    admin: httpx.Client,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    put(admin, "prod/chat-models", MODELS, kind="ModelEndpoints")
    put(admin, "prod/limits", limits(5))
    revision = admin.get("/v1/configs/prod").json()["revision"]
    monkeypatch.setenv("CONFIGSVC_URL", sdk_service.url)
    monkeypatch.setenv("CONFIGSVC_TOKEN", sdk_service.admin_token)
    monkeypatch.chdir(tmp_path)
    text = DOC.read_text()
    namespace: dict[str, object] = {"__name__": "sdk_doc"}
    ran = 0
    for block in BLOCK.finditer(text):
        line = text.count("\n", 0, block.start()) + 1
        if block["file"]:
            path = tmp_path / block["file"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(block["body"])
        elif block["info"].strip() == "python":
            exec(compile(block["body"], f"{DOC}:{line}", "exec"), namespace)
            ran += 1
    assert ran >= 10
    out = capsys.readouterr().out
    assert "http://127.0.0.1:1234/v1 codebooga-34b 600.0" in out
    assert "streaming" in out
    assert f"\nstreaming {revision} " in out  # the status example, on a running client
    assert (tmp_path / ".configsvc-cache").is_dir()
