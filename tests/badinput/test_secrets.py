"""No secret value and no token ever shows up where it should not.

A representative workload runs against a service whose logging (every logger, DEBUG,
uvicorn's access log included) is captured: documents whose api keys carry a unique
marker, a version history, a masked write-back, a rollback, a delete, errors provoked on
those documents, watch streams, the CLI (`get`, `list`, `diff`, `history`, `apply
--dry-run`, `rollback`, `tokens list`, `watch`) in subprocesses, and SDK clients (one with
a token without secrets; one with `secrets` whose live HTTP client calls an endpoint that
does not answer, so that it logs retries and fallbacks). Then:

- the marker is in no log line (service, SDK, etcd's own log), in no CLI output, in no
  error body and in no answer to a token without `secrets`, nor in that token's SDK cache;
- no token secret (the admin token, created tokens, a wrong token that was presented) is
  in any log, any listing, any CLI output or any answer but the one that created it.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from badinput.badtools import MARKER, MAX_BODY, models_spec, rate_spec
from configsvc_client import ConfigClient
from configsvc_client._options import ClientOptions
from configsvc_client.kinds import ModelEndpoints, RateLimits
from configsvc_client.live import LiveHTTPClient
from support import ADMIN_TOKEN, SseReader

from configsvc.app import create_app
from configsvc.asgi_server import make_server
from configsvc.embedded.process import EtcdProcess, free_port
from configsvc.settings import ServiceSettings

CONFIGSVC = str(Path(sys.executable).parent / "configsvc")
DOC = "/v1/configs/prod/chat-models"


class Capture(logging.Handler):
    """Every record of every logger, formatted with its traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.lines: list[str] = []
        self._lock_lines = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        with self._lock_lines:
            self.lines.append(text)

    def text(self) -> str:
        with self._lock_lines:
            return "\n".join(self.lines)


@pytest.fixture
def captured() -> Iterator[Capture]:
    handler = Capture()
    # uvicorn's own loggers may not propagate (another server in this process configured
    # them), so the handler goes on them too.
    loggers = [logging.getLogger(name) for name in ("", "uvicorn", "uvicorn.access")]
    previous = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        for logger, level in zip(loggers, previous, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)


@dataclass
class LoggedService:
    url: str
    server: Any
    thread: threading.Thread
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, token: str = ADMIN_TOKEN) -> httpx.Client:
        """A client with `token`, closed when the test ends."""
        headers = {"Authorization": f"Bearer {token}"}
        self.clients.append(httpx.Client(base_url=self.url, headers=headers, timeout=15))
        return self.clients[-1]


@pytest.fixture
def logged_service(etcd: EtcdProcess, captured: Capture) -> Iterator[LoggedService]:
    """A service like `configsvc serve` runs it, logging everything at DEBUG to the root
    logger (uvicorn's access log included)."""
    port = free_port()
    settings = ServiceSettings(
        host="127.0.0.1", port=port, etcd=etcd.client_url, admin_token=ADMIN_TOKEN, keepalive=1
    )
    app = create_app(settings, [etcd.client_url])
    server = make_server(
        app, "127.0.0.1", port, log_level="debug", access_log=True, log_config=None
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the service did not start"
        time.sleep(0.02)
    running = LoggedService(url, server, thread)
    yield running
    for client in running.clients:
        client.close()
    server.should_exit = True
    thread.join(timeout=10)


@dataclass
class Seen:
    """Everything that must hold no secret, by where it came from."""

    texts: dict[str, str] = field(default_factory=dict)

    def add(self, where: str, text: str | bytes) -> None:
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        self.texts[f"{len(self.texts):03d} {where}"] = text

    def answer(self, where: str, response: httpx.Response) -> httpx.Response:
        self.add(f"{where} -> {response.status_code}", response.text)
        return response

    def leaks(self, *secrets: str) -> list[str]:
        return [
            f"{where}: {secret[:12]}…"
            for where, text in self.texts.items()
            for secret in secrets
            if secret in text
        ]


def run_cli(env: dict[str, str], cwd: Path, *commands: list[str]) -> list[tuple[int, str, str]]:
    """Run the CLI commands in parallel; their (exit status, stdout, stderr)."""
    procs = [
        subprocess.Popen(
            [CONFIGSVC, *command],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command in commands
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        results.append((proc.returncode, out, err))
    return results


def cli_env(tmp_path: Path, url: str, token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONFIGSVC_")}
    env.update(
        CONFIGSVC_URL=url,
        CONFIGSVC_TOKEN=token,
        CONFIGSVC_DATA_DIR=str(tmp_path / "cli-data"),
        NO_COLOR="1",
        COLUMNS="200",
    )
    return env


def live_spec(port: int, secret: str) -> dict[str, Any]:
    """Two endpoints on a port where nothing listens, with quick retries."""
    retry = {"attempts": 2, "backoff_initial": 0.01, "backoff_max": 0.02}
    endpoint = {"model": "m", "retry": retry, "timeout": {"connect": 0.5, "read": 0.5}}
    return {
        "default": "a",
        "fallbacks": ["b"],
        "endpoints": {
            "a": {**endpoint, "base_url": f"http://127.0.0.1:{port}/v1", "api_key": f"{secret}-a"},
            "b": {**endpoint, "base_url": f"http://127.0.0.1:{port}/v2", "api_key": f"{secret}-b"},
        },
    }


def test_no_secret_or_token_leaks_anywhere(
    logged_service: LoggedService,
    captured: Capture,
    etcd: EtcdProcess,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    url = logged_service.url
    seen = Seen()  # answers to tokens without secrets, error bodies, listings, CLI output
    admin = logged_service.client()
    tokens: dict[str, str] = {}
    for name, role, namespaces, secrets in (
        ("svc-reader", "reader", ["prod*"], False),
        ("svc-secrets", "reader", ["*"], True),
        ("ops-writer", "writer", ["prod"], False),
    ):
        body = {"name": name, "role": role, "namespaces": namespaces, "secrets": secrets}
        created = admin.post("/v1/tokens", json=body)
        assert created.status_code == 201, created.text
        tokens[name] = created.json()["token"]
    reader = logged_service.client(tokens["svc-reader"])
    writer = logged_service.client(tokens["ops-writer"])
    wrong_token = f"cst.svc-reader.{MARKER}-not-the-secret"

    # ---- a reader's stream from the start, and the writes it sees -----------------------
    stream = SseReader(url, tokens["svc-reader"], ["prod"])
    admin_stream = SseReader(url, ADMIN_TOKEN, ["prod"])
    assert stream.next().event == "snapshot"

    def put(client: httpx.Client, spec: dict[str, Any], **kw: Any) -> httpx.Response:
        response = client.put(DOC, json={"kind": "ModelEndpoints", "spec": spec}, **kw)
        seen.answer("put", response) if client is not admin else None
        return response

    assert put(admin, models_spec(read=600)).status_code == 201
    assert put(admin, models_spec(read=30)).status_code == 200
    masked = reader.get(DOC).json()
    assert masked["spec"]["endpoints"]["hosted"]["api_key"] == "****"
    masked["spec"]["endpoints"]["local-34b"]["timeout"]["read"] = 45
    assert seen.answer("masked write-back", writer.put(DOC, json=masked)).status_code == 200
    dry = writer.put(DOC, params={"dry_run": "true"}, json=masked)
    assert seen.answer("dry run", dry).status_code == 200
    rolled = writer.post(f"{DOC}/rollback", json={"to_version": 1})
    assert seen.answer("rollback", rolled).status_code == 200
    assert admin.delete(DOC).status_code == 200
    recreated = writer.post(f"{DOC}/rollback", json={"to_version": 2})
    assert seen.answer("rollback re-creates", recreated).status_code == 201
    admin.put(
        "/v1/configs/prod/limits", json={"kind": "RateLimits", "spec": rate_spec(5)}
    ).raise_for_status()

    # ---- errors provoked on those documents ----------------------------------------------
    bad = models_spec()
    bad["endpoints"]["hosted"]["base_url"] = "ftp://nowhere"
    bad["endpoints"]["local-34b"]["timeout"]["read"] = 0
    errors = [
        ("invalid spec", admin.put(DOC, json={"kind": "ModelEndpoints", "spec": bad})),
        ("invalid spec, writer", writer.put(DOC, json={"kind": "ModelEndpoints", "spec": bad})),
        ("unknown field", put(admin, {**models_spec(), "api_key": MARKER})),
        ("412", put(admin, models_spec(), headers={"If-Match": '"1"'})),
        ("409", put(admin, models_spec(), headers={"If-None-Match": "*"})),
        ("413", admin.put(DOC, content=(MARKER * (MAX_BODY // len(MARKER) + 1)).encode())),
        ("400", admin.put(DOC, content=f'{{"spec": {{"api_key": "{MARKER}"'.encode())),
        ("403", reader.put(DOC, json={"kind": "ModelEndpoints", "spec": models_spec()})),
        ("403 ns", writer.put("/v1/configs/staging/x", json={"kind": "x", "spec": bad})),
        ("mask with nothing stored", writer.put("/v1/configs/prod/new", json=masked)),
        ("404 version", reader.get(f"{DOC}/versions/99")),
        ("401 wrong token", logged_service.client(wrong_token).get(DOC)),
        (
            "401 watch",
            httpx.get(
                f"{url}/v1/watch?namespace=prod", headers={"Authorization": f"Bearer {wrong_token}"}
            ),
        ),
    ]
    for what, response in errors:
        assert 400 <= response.status_code < 500, (what, response.text)
        seen.answer(f"error {what}", response)

    # ---- reads by tokens without secrets --------------------------------------------------
    for path in (DOC, "/v1/configs/prod", f"{DOC}/history", "/v1/namespaces"):
        seen.answer(f"reader {path}", reader.get(path))
        seen.answer(f"writer {path}", writer.get(path))
    for version in range(1, 7):
        seen.answer(f"reader version {version}", reader.get(f"{DOC}/versions/{version}"))
    for since in (0, 1, 3):
        replay = SseReader(url, tokens["svc-reader"], ["prod"], since=since)
        for _ in range(3):
            event = replay.next(timeout=5)
            seen.add(f"reader replay since {since}", repr(event))
        replay.close()
    listing = admin.get("/v1/tokens")
    seen.answer("token listing", listing)
    assert {item["name"] for item in listing.json()["items"]} >= set(tokens)

    # ---- a staged rollout of the document: refused, started, read, aborted ------------------
    plan = {"steps": [10, 100], "step_seconds": 3600}
    refused = writer.post(
        f"{DOC}/rollouts", json={"kind": "ModelEndpoints", "spec": bad, "message": "x", **plan}
    )
    assert seen.answer("rollout of an invalid candidate", refused).status_code == 422
    candidate = copy.deepcopy(masked["spec"])
    candidate["endpoints"]["local-34b"]["timeout"]["read"] = 77
    started = writer.post(
        f"{DOC}/rollouts", json={"kind": "ModelEndpoints", "spec": candidate, **plan}
    )
    assert seen.answer("rollout started", started).status_code == 201, started.text
    chosen = {"X-Configsvc-Instance": "leak-probe", "X-Configsvc-Labels": "{}"}
    for client, who in ((reader, "reader"), (writer, "writer")):
        seen.answer(f"{who} rollout", client.get(f"{DOC}/rollouts/current"))
        seen.answer(f"{who} candidate", client.get(f"{DOC}/versions/{started.json()['version']}"))
        seen.answer(f"{who} named listing", client.get("/v1/configs/prod", headers=chosen))
    seen.answer("put during the rollout", put(writer, models_spec(read=31)))
    aborted = writer.post(f"{DOC}/rollouts/current/abort", json={"reason": "leak probe"})
    assert seen.answer("rollout aborted", aborted).status_code == 200

    # ---- the CLI --------------------------------------------------------------------------
    work = tmp_path / "work"
    work.mkdir()
    new_key = f"{MARKER}-from-a-file"
    (work / "models.yaml").write_text(
        "namespace: prod\nname: chat-models\nkind: ModelEndpoints\nspec:\n"
        "  default: local\n  endpoints:\n    local:\n      base_url: http://127.0.0.1:1234/v1\n"
        f"      model: m\n      api_key: {new_key}\n"
    )
    (work / "bad.yaml").write_text(
        "namespace: prod\nname: chat-models\nkind: ModelEndpoints\nspec:\n"
        "  default: nope\n  endpoints:\n    local:\n      base_url: ftp://x\n"
        f"      model: m\n      api_key: {new_key}\n"
    )
    admin_env = cli_env(tmp_path, url, ADMIN_TOKEN)
    reader_env = cli_env(tmp_path, url, tokens["svc-reader"])
    watcher = subprocess.Popen(
        [CONFIGSVC, "watch", "prod", "-o", "json"],
        env=admin_env,
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    results = run_cli(
        admin_env,
        work,
        ["get", "prod/chat-models"],
        ["get", "prod/chat-models", "-o", "json"],
        ["get", "prod/chat-models", "--version", "1", "-o", "yaml"],
        ["list", "prod"],
        ["list", "prod", "-o", "json"],
        ["history", "prod/chat-models"],
        ["diff", "prod/chat-models", "--from", "1", "--to", "2"],
        ["diff", "-f", "models.yaml"],
        ["apply", "-f", "models.yaml", "--dry-run"],
        ["apply", "-f", "bad.yaml"],
        ["get", "prod/missing"],
        ["tokens", "list"],
        ["tokens", "list", "-o", "json"],
    )
    results += run_cli(
        reader_env,
        work,
        ["get", "prod/chat-models", "--show-secrets"],
        ["list", "prod", "-o", "yaml"],
        ["diff", "prod/chat-models"],
        ["apply", "-f", "models.yaml"],
        ["rollout", "status", "prod/chat-models"],
    )
    results += run_cli(admin_env, work, ["rollback", "prod/chat-models", "--steps", "1", "--yes"])
    results += run_cli(cli_env(tmp_path, url, wrong_token), work, ["get", "prod/chat-models"])
    for index, (code, out, err) in enumerate(results):
        assert code in (0, 1), (index, code, out, err)
        seen.add(f"cli {index} stdout", out)
        seen.add(f"cli {index} stderr", err)
    assert results[0][0] == 0 and "****" in results[0][1], results[0]

    # ---- the SDK ----------------------------------------------------------------------------
    closed_port = free_port()
    admin.put(
        "/v1/configs/prod/live",
        json={"kind": "ModelEndpoints", "spec": live_spec(closed_port, MARKER)},
    ).raise_for_status()
    options = ClientOptions(start_timeout=10, backoff_initial=0.05, backoff_max=0.2)
    changes: list[Any] = []
    with ConfigClient(
        url,
        token=tokens["svc-reader"],
        namespaces=["prod"],
        cache_dir=tmp_path / "reader-cache",
        options=options,
    ) as client:
        models = client.bind("prod/chat-models", ModelEndpoints)
        wrong_kind = client.bind("prod/limits", ModelEndpoints)  # rejected: logs a warning
        limits = client.bind("prod/limits", RateLimits)
        models.on_change(lambda old, new: changes.append(new))
        assert models.value is not None
        assert models.value.endpoints["local-34b"].api_key == "****"
        assert wrong_kind.value is None and limits.value is not None
        put(admin, models_spec(read=99)).raise_for_status()
        deadline = time.monotonic() + 10
        while not any(c and c.endpoints["local-34b"].timeout.read == 99 for c in changes):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        seen.add("sdk status", repr(client.status))
        seen.add("sdk value", repr(models.value))

    async def call_through_live_client() -> None:
        async with ConfigClient(
            url,
            token=tokens["svc-secrets"],
            namespaces=["prod"],
            cache_dir=tmp_path / "secrets-cache",
            options=options,
        ) as client:
            live = client.bind("prod/live", ModelEndpoints)
            assert live.value is not None
            assert live.value.endpoints["a"].api_key == f"{MARKER}-a"  # clear: it may
            async with LiveHTTPClient(live) as http:
                with pytest.raises(Exception) as failure:
                    await http.post("/chat/completions", json={"model": "m"})
                seen.add("live client failure", f"{failure.value!r} {failure.value}")

    asyncio.run(call_through_live_client())
    for path in sorted((tmp_path / "reader-cache").rglob("*")):
        if path.is_file():
            seen.add(f"reader cache {path.name}", path.read_bytes())
    secret_caches = sorted((tmp_path / "secrets-cache").glob("*.json"))
    assert secret_caches  # the client that may read secrets keeps them only sealed
    for path in secret_caches:
        assert path.stat().st_mode & 0o077 == 0, f"{path} is readable by others"
        seen.add(f"secrets cache {path.name}", path.read_bytes())

    # ---- streams end; collect what they saw -------------------------------------------------
    watcher.send_signal(signal.SIGINT)
    out, err = watcher.communicate(timeout=20)
    seen.add("cli watch stdout", out)
    seen.add("cli watch stderr", err)
    assert out.count('"action"') >= 1, (out, err)
    stream.close()
    admin_stream.close()
    while (event := stream.next(timeout=5)) is not None:
        seen.add("reader stream", repr(event))

    # ---- the logs ---------------------------------------------------------------------------
    logs = captured.text()
    assert "GET /v1/configs/prod/chat-models" in logs  # the access log was captured
    assert "configsvc_client" in logs or "httpx" in logs  # and the SDK's
    seen.add("service and SDK logs", logs)
    outerr = capfd.readouterr()
    seen.add("process stdout", outerr.out)
    seen.add("process stderr", outerr.err)
    seen.add("etcd log", etcd.log_path.read_bytes() if etcd.log_path else b"")

    token_secrets = [ADMIN_TOKEN, wrong_token.rsplit(".", 1)[1], *tokens.values()]
    token_secrets += [token.rsplit(".", 1)[1] for token in tokens.values()]
    assert seen.leaks(MARKER, *token_secrets) == []
    assert len(seen.texts) > 60
    # Controls: the secrets are where they belong, so the scan above would have found them.
    assert MARKER in admin.get(DOC).text
    assert any(token.rsplit(".", 1)[1] not in logs for token in tokens.values())
