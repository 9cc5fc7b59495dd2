"""Service instances in subprocesses on fixed ports, so that they can be killed and restarted.

Each instance runs `create_app` + `make_server` (uvicorn, as `configsvc serve` does) against
every etcd endpoint of the cluster, with the same admin token, and dies with the thread that
started it (parent-death signal): start and restart instances from the test's main thread.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from support import ADMIN_TOKEN

from configsvc.embedded.process import free_port, parent_death_hook

KEEPALIVE = 0.5
"""The services' SSE keep-alive in the fault suite (the SDK counts 2x this as silence)."""
STORE_TIMEOUT = 2.0
"""The services' etcd call deadline: a write that takes longer answers 503 (ambiguous)."""
READY_TIMEOUT = 30.0
"""Seconds an instance may take to answer /readyz after it is spawned."""
STOP_TIMEOUT = 15.0
READY_POLL = 0.02
START_ATTEMPTS = 3
ADDRESS_IN_USE = "address already in use"

SERVE = """
import os, sys
from configsvc.app import create_app
from configsvc.asgi_server import make_server
from configsvc.settings import ServiceSettings
port, endpoints = int(sys.argv[1]), sys.argv[2]
settings = ServiceSettings(host="127.0.0.1", port=port, etcd=endpoints,
                           admin_token=os.environ["CONFIGSVC_ADMIN_TOKEN"],
                           keepalive=float(sys.argv[3]), store_timeout=float(sys.argv[4]))
app = create_app(settings, settings.etcd_endpoints())
make_server(app, "127.0.0.1", port, log_level="warning", lifespan="on").run()
"""


class ServiceInstance:
    """One service process on a port of its own; `kill`/`terminate` then `start` again."""

    def __init__(self, name: str, endpoints: list[str], log_path: Path) -> None:
        self.name = name
        self.endpoints = endpoints
        self.port = free_port()
        self.host = "127.0.0.1"
        self.url = f"http://{self.host}:{self.port}"
        self.admin_token = ADMIN_TOKEN
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def spawn(self) -> None:
        """Start the process without waiting; follow with `wait_ready`."""
        assert self.proc is None or self.proc.poll() is not None, f"{self.name} is running"
        args = [str(self.port), ",".join(self.endpoints), str(KEEPALIVE), str(STORE_TIMEOUT)]
        env = {**os.environ, "CONFIGSVC_ADMIN_TOKEN": ADMIN_TOKEN}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", SERVE, *args],
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
    """Whether /readyz answers 200 (plain http.client: cheap, so polling it often does not
    starve the test's other threads as creating an httpx client each time would)."""
    conn = http.client.HTTPConnection(host, port, timeout=1)
    try:
        conn.request("GET", "/readyz")
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()
