"""One etcd server process: spawn it tied to our lifetime, wait until healthy.

Used by the embedded default (`supervisor`) and by the test fixtures. The child gets a
parent-death signal (Linux `PR_SET_PDEATHSIG`), so an etcd started by a service that is
killed with SIGKILL does not outlive it and keep its data dir locked. The signal follows
the *thread* that spawned etcd: start it from a thread that lives as long as etcd should
(the main thread, in the service).
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from configsvc.errors import EtcdStartError

LOOPBACK = "127.0.0.1"
DEFAULT_START_TIMEOUT = 15.0
"""Seconds `start` waits for etcd to answer healthy."""
DEFAULT_STOP_TIMEOUT = 10.0
"""Seconds `stop` waits after SIGTERM before it sends SIGKILL."""
HEALTH_POLL_INTERVAL = 0.02
"""Seconds between health probes while etcd starts."""
HEALTH_PROBE_TIMEOUT = 1.0
"""Seconds one health probe may take."""
AUTO_COMPACTION_RETENTION = 10_000
"""Revisions etcd keeps before compacting older ones (revision mode)."""
FAST_HEARTBEAT_MS = 10
FAST_ELECTION_TIMEOUT_MS = 100
LOG_TAIL_BYTES = 64 * 1024
"""How much of a failed start's log is searched for the reason."""
MAX_REASON_CHARS = 300
LOG_FILE_MODE = 0o600

_PR_SET_PDEATHSIG = 1
_ADDRESS_IN_USE = "address already in use"
_FAILURE_LEVELS = frozenset({"fatal", "panic", "error"})


class EtcdAddressInUse(EtcdStartError):
    """etcd could not bind its client or peer port: another process holds it."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    """Whether a server could bind `port` on 127.0.0.1 now (as etcd does, with SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def _die_with_parent_hook(parent_pid: int) -> Callable[[], None]:
    """A pre-exec hook: SIGKILL the child when its parent dies; own process group.

    If the parent already died between fork and `prctl`, the signal would never come, so
    the child exits at once instead.
    """

    def hook() -> None:  # pragma: no cover - runs in the child before exec
        if sys.platform.startswith("linux"):
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != parent_pid:
                os._exit(1)
        os.setpgrp()

    return hook


def _loopback_request(
    port: int,
    method: str,
    path: str,
    timeout: float,
    body: bytes | None = None,
    tls: ssl.SSLContext | None = None,
) -> tuple[int, bytes]:
    """(status, body) of one HTTP request to etcd on 127.0.0.1:`port` (a JSON body if any),
    over HTTPS with `tls`; raises `OSError` or `http.client.HTTPException`."""
    conn = (
        http.client.HTTPSConnection(LOOPBACK, port, timeout=timeout, context=tls)
        if tls is not None
        else http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    )
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _probe_health(port: int, tls: ssl.SSLContext | None = None) -> str | None:
    """None when etcd on `port` answers `/health` healthy, else why not."""
    try:
        status, body = _loopback_request(port, "GET", "/health", HEALTH_PROBE_TIMEOUT, tls=tls)
    except (OSError, http.client.HTTPException) as exc:
        return type(exc).__name__
    with contextlib.suppress(ValueError):
        if status == 200 and json.loads(body).get("health") == "true":
            return None
    return body.decode(errors="replace")[:200]


def _failure_reason(log_text: str) -> str:
    """The most telling error in an etcd log excerpt.

    The last error entry of a JSON log (etcd 3.5's default), else the last plain line
    (etcd 3.4's default logger).
    """
    json_reason = text_reason = ""
    for line in filter(None, (raw.strip() for raw in log_text.splitlines())):
        try:
            entry = json.loads(line)
        except ValueError:
            text_reason = line
            continue
        if isinstance(entry, dict) and entry.get("level") in _FAILURE_LEVELS:
            error = entry.get("error")
            json_reason = f"{entry.get('msg', '')}: {error}" if error else str(entry.get("msg"))
    return (json_reason or text_reason)[:MAX_REASON_CHARS]


def parent_death_hook() -> Callable[[], None]:
    """A pre-exec hook for a child (etcd, or a test's service) that must die with the
    thread that spawns it: SIGKILL on that thread's death, and a process group of its own."""
    return _die_with_parent_hook(os.getpid())


@dataclass
class EtcdProcess:
    """One etcd member on loopback, alone (a cluster's members are made by the tests).

    `fast_raft` sets 10 ms heartbeats and a 100 ms election timeout (~0.1 s to healthy),
    meant for tests; the default timers suit a real machine; `heartbeat_ms` and
    `election_timeout_ms` set them explicitly (e.g. 50/500 for three members sharing two
    cores). With `log_path`, etcd's output is appended there, and a failed start names the
    reason found in it.

    With `client_tls`, the client port speaks TLS (its certificate flags come in
    `extra_args`): `client_url` is `https://` and the health probe uses that context (with
    a client certificate loaded into it when etcd asks for one).

    `spawn` starts it without waiting, `wait_healthy` waits until it answers healthy.
    """

    binary: Path
    data_dir: Path
    name: str = "configsvc"
    client_port: int = field(default_factory=free_port)
    peer_port: int = field(default_factory=free_port)
    fast_raft: bool = False
    auto_compaction_retention: int | None = AUTO_COMPACTION_RETENTION
    extra_args: Sequence[str] = ()
    log_path: Path | None = None
    heartbeat_ms: int | None = None
    election_timeout_ms: int | None = None
    """Raft timers in milliseconds; they win over `fast_raft` when given."""
    client_tls: ssl.SSLContext | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _log_offset: int = field(default=0, init=False, repr=False)

    @property
    def client_url(self) -> str:
        scheme = "https" if self.client_tls is not None else "http"
        return f"{scheme}://{LOOPBACK}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://{LOOPBACK}:{self.peer_port}"

    @property
    def pid(self) -> int | None:
        """The pid of the running (or exited, not yet stopped) etcd; None before start."""
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        """Whether etcd was started and has not exited."""
        return self._proc is not None and self._proc.poll() is None

    def args(self) -> list[str]:
        """The command line that `start` runs."""
        args = [
            str(self.binary),
            "--name", self.name,
            "--data-dir", str(self.data_dir),
            "--listen-client-urls", self.client_url,
            "--advertise-client-urls", self.client_url,
            "--listen-peer-urls", self.peer_url,
            "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", f"{self.name}={self.peer_url}",
            "--initial-cluster-state", "new",
        ]  # fmt: skip
        heartbeat, election = self.heartbeat_ms, self.election_timeout_ms
        if self.fast_raft:
            heartbeat = heartbeat or FAST_HEARTBEAT_MS
            election = election or FAST_ELECTION_TIMEOUT_MS
        if heartbeat is not None:
            args += ["--heartbeat-interval", str(heartbeat)]
        if election is not None:
            args += ["--election-timeout", str(election)]
        if self.auto_compaction_retention is not None:
            args += [
                "--auto-compaction-mode", "revision",
                "--auto-compaction-retention", str(self.auto_compaction_retention),
            ]  # fmt: skip
        return [*args, *self.extra_args]

    def start(self, timeout: float = DEFAULT_START_TIMEOUT) -> None:
        """Spawn etcd and return once it answers healthy; raise `EtcdStartError` if not.

        On failure etcd is stopped again, so a failed start leaves no process behind.
        """
        self.spawn()
        try:
            self.wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise

    def spawn(self) -> int:
        """Spawn etcd without waiting for it; returns its pid. Follow with `wait_healthy`."""
        if self.running:
            raise EtcdStartError(f"etcd is already running (pid {self.pid})")
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._proc = self._spawn()
        return self._proc.pid

    def _spawn(self) -> subprocess.Popen[bytes]:
        if self.log_path is None:
            return self._popen(subprocess.DEVNULL)
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, LOG_FILE_MODE)
        with os.fdopen(fd, "ab") as log:
            self._log_offset = log.tell()
            return self._popen(log)

    def _popen(self, output: int | IO[bytes]) -> subprocess.Popen[bytes]:
        try:
            return subprocess.Popen(
                self.args(),
                stdout=output,
                stderr=output,
                stdin=subprocess.DEVNULL,
                preexec_fn=parent_death_hook(),
            )
        except OSError as exc:
            raise EtcdStartError(f"cannot run {self.binary}: {exc}") from exc

    def wait_exit(self) -> int:
        """Block until the process exits; its exit status (-N for signal N)."""
        if self._proc is None:
            raise RuntimeError("etcd was not started")
        return self._proc.wait()

    def exit_reason(self) -> str:
        """The most telling error of the log written since the last look ("" if none)."""
        return _failure_reason(self._read_new_log()) if self.log_path is not None else ""

    def wait_healthy(self, timeout: float = DEFAULT_START_TIMEOUT) -> None:
        """Block until `/health` answers `{"health": "true"}`."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise self._exit_error(self._proc.returncode)
            reason = _probe_health(self.client_port, self.client_tls)
            if reason is None:
                return
            last = reason
            time.sleep(HEALTH_POLL_INTERVAL)
        raise EtcdStartError(f"etcd at {self.client_url} not healthy after {timeout}s: {last}")

    def _exit_error(self, status: int) -> EtcdStartError:
        """The error for an etcd that exited while starting, with the reason from its log."""
        message = f"etcd exited with status {status} while starting"
        if self.log_path is None:
            return EtcdStartError(message)
        reason = _failure_reason(self._read_new_log())
        if reason:
            message += f": {reason}"
        message += f" (log: {self.log_path})"
        cls = EtcdAddressInUse if _ADDRESS_IN_USE in reason else EtcdStartError
        return cls(message)

    def _read_new_log(self) -> str:
        """What etcd wrote to the log since the last start (at most its last part)."""
        if self.log_path is None:
            return ""
        try:
            with open(self.log_path, "rb") as log:
                size = log.seek(0, os.SEEK_END)
                log.seek(max(self._log_offset, size - LOG_TAIL_BYTES))
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    def signal(self, signum: int) -> None:
        """Send `signum` to the etcd process (tests: SIGKILL, SIGSTOP, SIGCONT)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL etcd and reap it."""
        if self._proc is not None:
            self.signal(signal.SIGKILL)
            self._proc.wait()

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
        """SIGTERM etcd, wait for it to exit, SIGKILL it if it does not. Idempotent."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGCONT)
            self._proc.terminate()
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def restart(self, timeout: float = DEFAULT_START_TIMEOUT) -> None:
        """Start again on the same data dir and ports (after `kill` or `stop`)."""
        self.stop()
        self.start(timeout)
