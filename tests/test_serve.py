"""The admin token, and `run_server` as a real process: embedded etcd, signals, SIGKILL."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from configsvc.embedded.process import EtcdProcess, free_port
from configsvc.embedded.stale import process_gone
from configsvc.embedded.supervisor import EmbeddedEtcd
from configsvc.server import ADMIN_TOKEN_PREFIX, admin_token_path, ensure_admin_token
from configsvc.settings import ServiceSettings

READY_TIMEOUT = 30.0
EXIT_TIMEOUT = 20.0
GONE_TIMEOUT = 5.0
POLL_INTERVAL = 0.05
CONCURRENT_STARTS = 4
STREAM_END_BOUND = 2.0
"""SIGTERM must end open watch streams well before uvicorn's graceful timeout (5 s)."""

SERVE = (
    "from configsvc.server import run_server; from configsvc.settings import ServiceSettings; "
    "run_server(ServiceSettings())"
)
PRINT_TOKEN = (
    "import sys; from pathlib import Path; from configsvc.server import ensure_admin_token; "
    "from configsvc.settings import ServiceSettings; "
    "print(ensure_admin_token(ServiceSettings(data_dir=Path(sys.argv[1]))))"
)

needs_app = pytest.mark.skipif(
    importlib.util.find_spec("configsvc.app") is None, reason="configsvc.app not written yet"
)


@pytest.fixture(autouse=True)
def no_configsvc_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("CONFIGSVC_"):
            monkeypatch.delenv(name)


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def wait_until_gone(pid: int, timeout: float = GONE_TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process_gone(pid):
            return True
        time.sleep(POLL_INTERVAL)
    return False


# -- the admin token ------------------------------------------------------------------------


def test_generated_token_is_private_and_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    settings = ServiceSettings(data_dir=data_dir)

    token = ensure_admin_token(settings)
    path = admin_token_path(data_dir)
    assert token.startswith(ADMIN_TOKEN_PREFIX)
    assert path.read_text().strip() == token
    assert mode(path) == 0o600
    assert mode(data_dir) == 0o700
    assert [p.name for p in data_dir.iterdir()] == [path.name]  # no temp files left

    assert ensure_admin_token(settings) == token
    assert ensure_admin_token(ServiceSettings(data_dir=data_dir)) == token


def test_environment_token_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir = tmp_path / "data"
    ensure_admin_token(ServiceSettings(data_dir=data_dir))
    monkeypatch.setenv("CONFIGSVC_ADMIN_TOKEN", "from-the-environment")
    assert ensure_admin_token(ServiceSettings(data_dir=data_dir)) == "from-the-environment"


def test_given_token_writes_no_file(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert ensure_admin_token(ServiceSettings(data_dir=data_dir, admin_token="given")) == "given"
    assert not data_dir.exists()


def test_empty_token_file_is_replaced(tmp_path: Path) -> None:
    path = admin_token_path(tmp_path)
    path.write_text("\n")
    token = ensure_admin_token(ServiceSettings(data_dir=tmp_path))
    assert token.startswith(ADMIN_TOKEN_PREFIX)
    assert path.read_text().strip() == token


def test_concurrent_first_starts_agree_on_one_token(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", PRINT_TOKEN, str(data_dir)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(CONCURRENT_STARTS)
    ]
    tokens = {proc.communicate()[0].strip() for proc in procs}
    assert tokens == {admin_token_path(data_dir).read_text().strip()}


# -- run_server as a process ----------------------------------------------------------------


@dataclass
class ServeProcess:
    """`run_server` in a child process, configured through CONFIGSVC_* variables."""

    proc: subprocess.Popen[bytes]
    url: str
    data_dir: Path
    stderr_path: Path

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"run_server exited with {self.proc.returncode}:\n{self.stderr}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(POLL_INTERVAL)
        pytest.fail(f"run_server not ready after {READY_TIMEOUT}s:\n{self.stderr}")

    def etcd_pid(self) -> int:
        return int(EmbeddedEtcd(self.data_dir).pid_path.read_text())

    def admin(self) -> httpx.Client:
        token = admin_token_path(self.data_dir).read_text().strip()
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"})


def start_serve(data_dir: Path, log_dir: Path, **env: str) -> ServeProcess:
    port = free_port()
    stderr_path = log_dir / f"serve-{port}.log"
    child_env = {
        **os.environ,
        "CONFIGSVC_DATA_DIR": str(data_dir),
        "CONFIGSVC_HOST": "127.0.0.1",
        "CONFIGSVC_PORT": str(port),
        **env,
    }
    with stderr_path.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVE], env=child_env, stdout=stderr, stderr=stderr
        )
    return ServeProcess(proc, f"http://127.0.0.1:{port}", data_dir, stderr_path)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[list[ServeProcess]]:
    """Started processes, killed at the end if a test left them running."""
    started: list[ServeProcess] = []
    yield started
    for running in started:
        if running.proc.poll() is None:
            running.proc.kill()
        running.proc.wait()


@needs_app
def test_serve_with_embedded_etcd_stops_it_on_sigterm(
    tmp_path: Path, serve: list[ServeProcess], capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "data"
    service = start_serve(data_dir, tmp_path)
    serve.append(service)
    service.wait_ready()
    etcd_pid = service.etcd_pid()
    token = admin_token_path(data_dir).read_text().strip()
    assert str(admin_token_path(data_dir)) in service.stderr
    assert token not in service.stderr
    with service.admin() as admin:
        assert admin.get("/v1/namespaces").status_code == 200
        with admin.stream("GET", "/v1/watch", params={"namespace": "prod"}) as stream:
            lines = stream.iter_lines()
            assert next(lines) != ""  # the stream is open and has sent its snapshot
            service.proc.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            with contextlib.suppress(httpx.HTTPError):
                for _ in lines:
                    pass
            stream_ended = time.monotonic() - signalled

    assert service.proc.wait(EXIT_TIMEOUT) == 0
    exited = time.monotonic() - signalled
    with capsys.disabled():
        print(f"\nSIGTERM: watch stream ended in {stream_ended:.2f}s, exit in {exited:.2f}s")
    assert stream_ended < STREAM_END_BOUND
    assert wait_until_gone(etcd_pid)
    assert not EmbeddedEtcd(data_dir).pid_path.exists()


@needs_app
def test_serve_after_sigkill_starts_again_with_its_data(
    tmp_path: Path, serve: list[ServeProcess]
) -> None:
    data_dir = tmp_path / "data"
    first = start_serve(data_dir, tmp_path)
    serve.append(first)
    first.wait_ready()
    with first.admin() as admin:
        created = admin.post(
            "/v1/tokens", json={"name": "ci", "role": "reader", "namespaces": ["*"]}
        )
        assert created.status_code == 201
    etcd_pid = first.etcd_pid()

    first.proc.kill()
    first.proc.wait()
    assert wait_until_gone(etcd_pid), "etcd outlived the SIGKILLed service"

    second = start_serve(data_dir, tmp_path)
    serve.append(second)
    second.wait_ready()
    with second.admin() as admin:
        names = [t["name"] for t in admin.get("/v1/tokens").json()["items"]]
    assert "ci" in names


@needs_app
def test_serve_with_external_etcd_starts_none(
    tmp_path: Path, etcd: EtcdProcess, serve: list[ServeProcess]
) -> None:
    data_dir = tmp_path / "data"
    service = start_serve(data_dir, tmp_path, CONFIGSVC_ETCD=etcd.client_url)
    serve.append(service)
    service.wait_ready()
    assert not EmbeddedEtcd(data_dir).etcd_dir.exists()
    service.proc.send_signal(signal.SIGINT)
    assert service.proc.wait(EXIT_TIMEOUT) == 0


@needs_app
def test_serve_on_a_taken_port_fails_and_stops_etcd(
    tmp_path: Path, serve: list[ServeProcess]
) -> None:
    data_dir = tmp_path / "data"
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        service = start_serve(data_dir, tmp_path, CONFIGSVC_PORT=str(port))
        serve.append(service)
        assert service.proc.wait(EXIT_TIMEOUT) != 0
    assert "did not start" in service.stderr
    assert not EmbeddedEtcd(data_dir).pid_path.exists()
    with EmbeddedEtcd(data_dir):  # the data dir was released
        pass


@needs_app
def test_sigterm_while_starting_leaves_no_etcd(tmp_path: Path, serve: list[ServeProcess]) -> None:
    data_dir = tmp_path / "data"
    service = start_serve(data_dir, tmp_path)
    serve.append(service)
    pid_path = EmbeddedEtcd(data_dir).pid_path
    deadline = time.monotonic() + READY_TIMEOUT
    while not pid_path.exists() and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL / 10)
    etcd_pid = int(pid_path.read_text())

    service.proc.send_signal(signal.SIGTERM)
    assert service.proc.wait(EXIT_TIMEOUT) == 0
    assert wait_until_gone(etcd_pid)
    assert "stopped by SIGTERM" in service.stderr


RAISE_LIMIT = (
    "import resource; from configsvc.rlimits import raise_open_files_limit; "
    "hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]; "
    "resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard)); "
    "print(raise_open_files_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0], hard)"
)


def test_serve_raises_its_open_files_limit_to_the_hard_one() -> None:
    """Each watch stream holds a socket: a soft limit of 1,024 would cap the streams."""
    done = subprocess.run(
        [sys.executable, "-c", RAISE_LIMIT], capture_output=True, text=True, check=True
    )
    reported, in_force, hard = (int(field) for field in done.stdout.split())
    ceiling = 1 << 20
    assert reported == in_force
    assert in_force == (ceiling if hard == resource.RLIM_INFINITY else min(hard, ceiling)) > 64
