"""Helpers of the CLI tests: run the installed `configsvc` command, sample documents."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from textwrap import dedent
from typing import IO

import httpx

CONFIGSVC = str(Path(sys.executable).parent / "configsvc")
RUN_TIMEOUT = 30.0
WAIT_TIMEOUT = 15.0

MODELS_YAML = dedent(
    """\
    namespace: prod
    name: chat-models
    kind: ModelEndpoints
    message: first
    spec:
      default: local
      endpoints:
        local:
          base_url: http://127.0.0.1:1234/v1
          model: codebooga-34b
          api_key: sk-old-secret-value
          timeout: {connect: 5, read: 600}
    """
)

LIMITS_YAML = dedent(
    """\
    namespace: prod
    name: limits
    kind: RateLimits
    spec:
      limits:
        chat: {requests_per_second: 5, burst: 10}
    """
)


@dataclass(frozen=True)
class Result:
    """How one run of the command ended."""

    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]

    def failed_with(self, *fragments: str) -> str:
        """Assert exit 1 with exactly one `error:` line on stderr holding `fragments`."""
        assert self.code == 1, self
        assert len(self.err_lines) == 1, self.err
        line = self.err_lines[0]
        assert line.startswith("error: "), line
        for fragment in fragments:
            assert fragment in line, line
        return line


@dataclass
class Cli:
    """Runs `configsvc` with `env` (no `CONFIGSVC_*` from the test's own environment)."""

    env: dict[str, str]
    cwd: Path
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    def __call__(
        self, *args: str, input: str | None = None, env: Mapping[str, str] | None = None
    ) -> Result:
        done = subprocess.run(
            [CONFIGSVC, *args],
            input=input if input is not None else "",
            capture_output=True,
            text=True,
            env={**self.env, **(env or {})},
            cwd=self.cwd,
            timeout=RUN_TIMEOUT,
        )
        result = Result(done.returncode, done.stdout, done.stderr)
        assert "Traceback" not in result.err, result.err
        return result

    def start(self, *args: str) -> subprocess.Popen[str]:
        """`configsvc ARGS` running in the background (stopped at the end of the test)."""
        proc = subprocess.Popen(
            [CONFIGSVC, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
            cwd=self.cwd,
        )
        self.procs.append(proc)
        return proc

    def write(self, relative: str, text: str) -> Path:
        """Write `text` to a file under the working directory; returns its path."""
        path = self.cwd / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path


def clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONFIGSVC_")}
    env.update(
        CONFIGSVC_DATA_DIR=str(tmp_path / "data"),
        NO_COLOR="1",
        PYTHONUNBUFFERED="1",
        COLUMNS="200",
    )
    return env


def put(api: httpx.Client, ref: str, kind: str, spec: dict[str, object], **extra: object) -> int:
    """Store a document through the API; returns its version."""
    response = api.put(f"/v1/configs/{ref}", json={"kind": kind, "spec": spec, **extra})
    assert response.status_code in (200, 201), response.text
    version: int = response.json()["version"]
    return version


def models_spec(api_key: str = "sk-old-secret-value", read: float = 600) -> dict[str, object]:
    return {
        "default": "local",
        "endpoints": {
            "local": {
                "base_url": "http://127.0.0.1:1234/v1",
                "model": "codebooga-34b",
                "api_key": api_key,
                "timeout": {"connect": 5, "read": read},
            }
        },
    }


class LineReader:
    """Collects the lines of a child's pipe in a thread; `wait_for` blocks until one matches."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def wait_for(self, fragment: str, timeout: float = WAIT_TIMEOUT, start: int = 0) -> int:
        """The index of the first line from `start` on that holds `fragment`."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for index in range(start, len(self.lines)):
                    if fragment in self.lines[index]:
                        return index
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no line with {fragment!r} in {self.lines}")
                self._changed.wait(remaining)
