"""An etcd left running by a crashed owner of a data dir: recognise it, stop it.

Only a process whose command line really is etcd on the data dir in question is touched.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from configsvc.errors import EtcdStartError

STALE_TERM_GRACE = 3.0
"""Seconds a stale etcd gets to exit after SIGTERM before it is SIGKILLed."""
STALE_KILL_WAIT = 5.0
"""Seconds to wait for a SIGKILLed stale etcd to disappear."""
PROCESS_POLL_INTERVAL = 0.02
"""Seconds between checks whether a stale process has exited."""


def read_pid(path: Path) -> int | None:
    """The pid written in `path`, or None."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def is_etcd_on(pid: int, etcd_dir: Path) -> bool:
    """Whether process `pid` is an etcd whose `--data-dir` is `etcd_dir` (Linux /proc)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return False
    if not argv or "etcd" not in Path(argv[0]).name:
        return False
    return any(
        os.path.realpath(d) == os.path.realpath(etcd_dir) for d in _flag_values(argv, "--data-dir")
    )


def _flag_values(argv: list[str], flag: str) -> list[str]:
    """The values given to `flag` in `argv`, as `--flag value` or `--flag=value`."""
    values = [arg.split("=", 1)[1] for arg in argv if arg.startswith(flag + "=")]
    values += [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == flag]
    return values


def terminate(pid: int) -> None:
    """SIGTERM `pid` (waking it if stopped), SIGKILL it after a grace period; wait until gone."""
    try:
        os.kill(pid, signal.SIGCONT)
        os.kill(pid, signal.SIGTERM)
        if _wait_gone(pid, STALE_TERM_GRACE):
            return
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    except PermissionError as exc:
        raise EtcdStartError(f"a stale etcd (pid {pid}) holds the data dir: {exc}") from exc
    if not _wait_gone(pid, STALE_KILL_WAIT):
        raise EtcdStartError(f"a stale etcd (pid {pid}) holds the data dir and will not exit")


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process_gone(pid):
            return True
        time.sleep(PROCESS_POLL_INTERVAL)
    return process_gone(pid)


def process_gone(pid: int) -> bool:
    """Whether `pid` no longer runs: it does not exist, or is a zombie awaiting its reaper."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    # The state follows the parenthesised command name, which may itself hold spaces.
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"
