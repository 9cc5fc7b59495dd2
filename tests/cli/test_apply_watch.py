"""`apply -f DIR --watch`: re-apply on change, report refusals and keep going, Ctrl-C exits 0."""

from __future__ import annotations

import signal
from typing import Any

import httpx
from cli.clitools import LIMITS_YAML, MODELS_YAML, Cli, LineReader

EXIT_TIMEOUT = 10.0


def test_watched_folder(cli: Cli, api: httpx.Client, service: Any) -> None:
    models = cli.write("conf/models.yaml", MODELS_YAML)
    proc = cli.start("apply", "-f", "conf", "--watch", "--debounce", "50")
    assert proc.stdout is not None and proc.stderr is not None
    out, err = LineReader(proc.stdout), LineReader(proc.stderr)
    err.wait_for("watching conf")
    seen = out.wait_for("created       prod/chat-models  version 1")

    models.write_text(MODELS_YAML.replace("read: 600", "read: 900"))
    seen = out.wait_for("updated       prod/chat-models  version 2", start=seen)
    assert api.get("/v1/configs/prod/chat-models").json()["version"] == 2

    models.write_text(MODELS_YAML.replace("http://127.0.0.1:1234/v1", "ftp://nowhere"))
    err.wait_for("refused: spec is not a valid ModelEndpoints: spec.endpoints.local.base_url")
    assert proc.poll() is None  # still watching
    assert api.get("/v1/configs/prod/chat-models").json()["version"] == 2

    models.write_text(MODELS_YAML)
    seen = out.wait_for("updated       prod/chat-models  version 3", start=seen)
    cli.write("conf/limits.yaml", LIMITS_YAML)
    out.wait_for("created       prod/limits  version 1", start=seen)
    cli.write("conf/broken.yaml", "kind: [\n")
    err.wait_for("conf/broken.yaml:2: invalid YAML")
    assert proc.poll() is None

    service.stop()  # an unreachable service is reported, and the watch goes on
    models.write_text(MODELS_YAML.replace("read: 600", "read: 700"))
    err.wait_for("cannot reach the service")
    assert proc.poll() is None

    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=EXIT_TIMEOUT) == 0
    assert not any("Traceback" in line for line in err.lines), err.lines


def test_watched_file_with_json_lines(cli: Cli) -> None:
    models = cli.write("models.yaml", MODELS_YAML)
    proc = cli.start("apply", "-f", "models.yaml", "--watch", "--debounce", "50", "-o", "json")
    assert proc.stdout is not None and proc.stderr is not None
    out = LineReader(proc.stdout)
    out.wait_for('"result": "created"')
    models.write_text(MODELS_YAML.replace("read: 600", "read: 900"))
    out.wait_for('"result": "updated"')
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=EXIT_TIMEOUT) == 0


def test_watch_needs_an_existing_path(cli: Cli) -> None:
    result = cli("apply", "-f", "nowhere", "--watch")
    result.failed_with("nowhere: no such file or folder")
