"""What the benchmark reads from /proc (Linux): a process's CPU time and RSS, and the
machine's busy time. (The open-files limit is raised with `configsvc.rlimits`.)"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
"""Clock ticks per second in /proc/<pid>/stat and /proc/stat."""
_PR_SET_PDEATHSIG = 1
_UTIME_FIELD = 11
"""utime's index among the fields after the command name in /proc/<pid>/stat (stime next)."""
_IDLE_FIELDS = (3, 4)
"""idle and iowait in the `cpu` line of /proc/stat (after the label)."""


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid`, in seconds (resolution: one clock tick, usually 10 ms)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    fields = stat[stat.rfind(b")") + 2 :].split()
    return (int(fields[_UTIME_FIELD]) + int(fields[_UTIME_FIELD + 1])) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    """The resident set size of `pid` (VmRSS), in bytes."""
    with open(f"/proc/{pid}/status", "rb") as f:
        for line in f:
            if line.startswith(b"VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def machine_busy_seconds() -> float:
    """CPU seconds spent busy (not idle, not waiting on I/O) by all cores since boot."""
    with open("/proc/stat", "rb") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = sum(values[i] for i in _IDLE_FIELDS)
    # guest time is already counted in user time
    return (sum(values[:8]) - idle) / CLOCK_TICKS


@dataclass(frozen=True)
class CpuSample:
    """CPU seconds of the watched processes and of the whole machine at one instant."""

    per_pid: dict[int, float]
    machine: float

    @staticmethod
    def take(pids: list[int]) -> CpuSample:
        return CpuSample({pid: cpu_seconds(pid) for pid in pids}, machine_busy_seconds())

    def since(self, earlier: CpuSample) -> CpuDelta:
        own = {pid: self.per_pid[pid] - earlier.per_pid[pid] for pid in self.per_pid}
        return CpuDelta(own, self.machine - earlier.machine)


@dataclass(frozen=True)
class CpuDelta:
    per_pid: dict[int, float]
    machine: float

    @property
    def foreign(self) -> float:
        """CPU seconds used on the machine by processes other than the watched ones."""
        return max(0.0, self.machine - sum(self.per_pid.values()))


def die_with_parent() -> Callable[[], None]:
    """A `preexec_fn`: the child gets SIGKILL when the benchmark dies (Linux)."""
    parent = os.getpid()

    def hook() -> None:  # runs in the child before exec
        if sys.platform.startswith("linux"):
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != parent:
                os._exit(1)

    return hook
