"""`serve`: flags and `CONFIGSVC_*` variables reach the service; the CLI finds its token."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import httpx
from cli.clitools import Cli, LineReader

from configsvc.embedded.process import EtcdProcess, free_port

READY_TIMEOUT = 20.0
EXIT_TIMEOUT = 15.0


def test_serve_then_use_it_with_the_local_admin_token(bare_cli: Cli, etcd: EtcdProcess) -> None:
    port = free_port()
    data_dir = bare_cli.cwd.parent / "data"
    bare_cli.env["CONFIGSVC_PORT"] = str(port)  # a variable, not a flag: still applies
    proc = bare_cli.start("serve", "--etcd", etcd.client_url, "--keepalive", "1")
    assert proc.stderr is not None
    err = LineReader(proc.stderr)
    url = f"http://127.0.0.1:{port}"
    _wait_ready(url, proc)
    assert (data_dir / "admin.token").exists()
    bare_cli.env["CONFIGSVC_URL"] = url
    listed = bare_cli("list")  # no token given: <data-dir>/admin.token
    assert listed.code == 0, listed
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=EXIT_TIMEOUT) == 0
    assert not any("Traceback" in line for line in err.lines), err.lines


def test_serve_refuses_bad_settings(bare_cli: Cli) -> None:
    bare_cli("serve", "--keepalive", "-1").failed_with("invalid settings", "keepalive")


def _wait_ready(url: str, proc: object) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} did not become ready ({proc})")


SERVER_ONLY = ("fastapi", "uvicorn", "aetcd", "pydantic_settings", "prometheus_client")
WITHOUT_SERVER_EXTRA = (
    "import sys\n"
    f"for name in {SERVER_ONLY!r}:\n"
    "    sys.modules[name] = None  # as if the server extra were not installed\n"
    "from configsvc.cli import main\n"
    "sys.argv[0] = 'configsvc'\n"
    "main()\n"
)


def test_without_the_server_extra(cli: Cli) -> None:
    """Every command but serve works; serve says what to install, in one line."""
    run = [sys.executable, "-c", WITHOUT_SERVER_EXTRA]
    listed = subprocess.run([*run, "list"], env=cli.env, capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    serve = subprocess.run([*run, "serve"], env=cli.env, capture_output=True, text=True)
    assert serve.returncode == 1
    assert serve.stderr.count("\n") == 1
    assert "pip install 'configsvc[server]'" in serve.stderr
