"""The process's open-files limit: every watch stream holds a socket."""

from __future__ import annotations

import contextlib
import resource

MAX_OPEN_FILES = 1 << 20
"""Linux's default per-process ceiling (`fs.nr_open`); the soft limit is raised at most to it."""


def raise_open_files_limit() -> int:
    """Raise the soft open-files limit to the hard one (the usual soft default, 1,024, would
    cap an instance near a thousand streams). Returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(hard, MAX_OPEN_FILES) if hard != resource.RLIM_INFINITY else MAX_OPEN_FILES
    if target > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    return soft
