"""Service instances in subprocesses on fixed ports, so that they can be killed and restarted.

Each instance runs `create_app` + `make_server` (uvicorn, as `configsvc serve` does) against
every etcd endpoint of the cluster, with the same admin token, and dies with the thread that
started it (parent-death signal): start and restart instances from the test's main thread.
Given a host and a command prefix (`ip netns exec NS`), it runs in a network namespace and
listens on that host's address.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from support import ADMIN_TOKEN

from configsvc.embedded.process import free_port, parent_death_hook

SERVICE_NAMES = ["a", "b"]
"""The fault suite's instances (their hosts in a `NetLab` are `sa`, `sb`)."""
KEEPALIVE = 0.5
"""The services' SSE keep-alive in the fault suite (the SDK counts 2x this as silence)."""
STORE_TIMEOUT = 2.0
"""The services' etcd call deadline: a write that takes longer answers 503 (ambiguous)."""
READY_TIMEOUT = 30.0
"""Seconds an instance may take to answer /readyz after it is spawned."""
STOP_TIMEOUT = 15.0
READY_POLL = 0.02
READY_PROBE_TIMEOUT = 1.0
START_ATTEMPTS = 3
ADDRESS_IN_USE = "address already in use"

SERVE = """
import os, sys
from configsvc.app import create_app
from configsvc.asgi_server import make_server
from configsvc.settings import ServiceSettings
host, port, endpoints = sys.argv[1], int(sys.argv[2]), sys.argv[3]
settings = ServiceSettings(host=host, port=port, etcd=endpoints,
                           admin_token=os.environ["CONFIGSVC_ADMIN_TOKEN"],
                           keepalive=float(sys.argv[4]), store_timeout=float(sys.argv[5]))
app = create_app(settings, settings.etcd_endpoints())
make_server(app, host, port, log_level="warning", lifespan="on").run()
"""


class ServiceInstance:
    """One service process on a port of its own; `kill`/`terminate` then `start` again.

    `env` adds variables (e.g. `CONFIGSVC_ETCD_QUOTA_BYTES`); `host`, `port` and
    `command_prefix` place it in a network namespace (see `tests/faults/_netns.py`)."""

    def __init__(
        self,
        name: str,
        endpoints: list[str],
        log_path: Path,
        *,
        env: dict[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        command_prefix: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.endpoints = endpoints
        self.port = port or free_port()
        self.host = host
        self.env = dict(env or {})
        self.command_prefix = command_prefix
        self.url = f"http://{self.host}:{self.port}"
        self.admin_token = ADMIN_TOKEN
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def spawn(self) -> None:
        """Start the process without waiting; follow with `wait_ready`."""
        assert self.proc is None or self.proc.poll() is not None, f"{self.name} is running"
        args = [self.host, str(self.port), ",".join(self.endpoints), str(KEEPALIVE)]
        args.append(str(STORE_TIMEOUT))
        env = {**os.environ, **self.env, "CONFIGSVC_ADMIN_TOKEN": ADMIN_TOKEN}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [*self.command_prefix, sys.executable, "-c", SERVE, *args],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                env=env,
                preexec_fn=parent_death_hook(),
            )
        self.starts += 1

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> float:
        """Block until /readyz answers 200; returns the monotonic time it did."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited ({self.proc.returncode}); see {self.log_path}"
                )
            if _ready(self.host, self.port):
                return time.monotonic()
            time.sleep(READY_POLL)
        raise AssertionError(f"{self.name} not ready within {timeout} s; see {self.log_path}")

    def start(self) -> float:
        """Spawn and wait until ready; returns the monotonic time it was."""
        self.spawn()
        return self.wait_started()

    def wait_started(self) -> float:
        """`wait_ready` after `spawn`; on the first start only (clients know the URL
        afterwards), a port taken meanwhile by another process is replaced: ports are
        picked free, not reserved."""
        for attempt in range(START_ATTEMPTS):
            try:
                return self.wait_ready()
            except AssertionError:
                if self.starts > 1 or attempt == START_ATTEMPTS - 1 or not self._port_taken():
                    raise
                self.port = free_port()
                self.url = f"http://{self.host}:{self.port}"
                self.starts = 0
                self.spawn()
        raise AssertionError("unreachable")

    def _port_taken(self) -> bool:
        return not self.running and ADDRESS_IN_USE in self.log_text()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> float:
        """SIGKILL the process and reap it; returns the monotonic time of the kill."""
        at = time.monotonic()
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            os.kill(self.proc.pid, signal.SIGCONT)  # a frozen process dies only once resumed
            self.proc.wait(STOP_TIMEOUT)
        return at

    def terminate(self) -> float:
        """SIGTERM (graceful: streams are closed at once); returns the time it was sent."""
        at = time.monotonic()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
        return at

    def freeze(self) -> None:
        """SIGSTOP the process: its connections stay open, nothing is read or written."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def readiness(self, timeout: float = READY_PROBE_TIMEOUT) -> tuple[int, str]:
        """/readyz now: (status code, its `status`), (0, error) when it does not answer."""
        return readiness(self.host, self.port, timeout)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_exit(self) -> None:
        if self.proc is not None:
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()

    def stop(self) -> None:
        self.terminate()
        self.wait_exit()

    def client(self, timeout: float = 10.0) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)


def _ready(host: str, port: int) -> bool:
    """Whether /readyz answers 200."""
    return readiness(host, port, READY_PROBE_TIMEOUT)[0] == 200


def readiness(host: str, port: int, timeout: float) -> tuple[int, str]:
    """/readyz's status code and its `status` (0 and the error when it does not answer).

    Plain http.client: cheap, so polling it often does not starve the test's other threads
    as creating an httpx client each time would."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", "/readyz")
        response = conn.getresponse()
        body = response.read()
        try:
            status = str(json.loads(body).get("status"))
        except (ValueError, AttributeError):
            status = body[:80].decode(errors="replace")
        return response.status, status
    except (OSError, http.client.HTTPException) as exc:
        return 0, type(exc).__name__
    finally:
        conn.close()


SERVE_CLI = "from configsvc.cli import main; main()"
"""`configsvc serve ...` as the console script runs it (arguments follow)."""
ETCD_PID_FILE = "etcd.pid"


class EmbeddedServe(ServiceInstance):
    """`configsvc serve` with no etcd endpoints: the embedded default, which starts and
    supervises its own etcd under `data_dir` (the fault suite's keep-alive and deadline)."""

    def __init__(
        self, name: str, data_dir: Path, log_path: Path, etcd_binary: Path | None = None
    ) -> None:
        super().__init__(name, [], log_path)
        self.data_dir = data_dir
        self.etcd_binary = etcd_binary

    def spawn(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, f"{self.name} is running"
        args = ["serve", "--host", self.host, "--port", str(self.port)]
        args += ["--data-dir", str(self.data_dir), "--keepalive", str(KEEPALIVE)]
        if self.etcd_binary is not None:
            args += ["--etcd-binary", str(self.etcd_binary)]
        env = {
            **os.environ,
            "CONFIGSVC_ADMIN_TOKEN": ADMIN_TOKEN,
            "CONFIGSVC_STORE_TIMEOUT": str(STORE_TIMEOUT),
        }
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", SERVE_CLI, *args],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                env=env,
                preexec_fn=parent_death_hook(),
            )
        self.starts += 1

    def etcd_pid(self) -> int | None:
        """The pid of the embedded etcd, as `configsvc serve` recorded it."""
        try:
            return int((self.data_dir / ETCD_PID_FILE).read_text().strip())
        except (OSError, ValueError):
            return None

    def exit_code(self) -> int | None:
        return None if self.proc is None else self.proc.poll()
