"""`apply --watch`: re-apply the files that change, until Ctrl-C."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import watchfiles

from configsvc.cli._files import is_config_file

DEFAULT_DEBOUNCE_MS = 300
STEP_MS = 50
READY_TICK_MS = 100
"""How soon the watcher reports itself ready (an empty first round) once it runs."""


class ConfigFilter:
    """Accepts the config files under the watched folders and the watched files themselves."""

    def __init__(self, roots: Iterable[Path]) -> None:
        roots = [root.resolve() for root in roots]
        self._files = {root for root in roots if not root.is_dir()}
        self._dirs = [root for root in roots if root.is_dir()]

    def __call__(self, _change: watchfiles.Change, raw: str) -> bool:
        path = Path(raw).resolve()
        if path in self._files:
            return True
        return is_config_file(path) and any(
            path.is_relative_to(root)
            and not any(p.startswith(".") for p in path.relative_to(root).parts)
            for root in self._dirs
        )


def watch_changes(
    roots: list[Path],
    on_ready: Callable[[], None],
    on_change: Callable[[list[Path], list[Path]], None],
    *,
    debounce_ms: int = DEFAULT_DEBOUNCE_MS,
) -> None:
    """Call `on_ready` once the watcher runs, then `on_change(changed, removed)` after each
    debounced burst of changes. Returns never; Ctrl-C raises `KeyboardInterrupt`."""
    folders = sorted({root if root.is_dir() else root.parent for root in roots})
    ready = False
    for changes in watchfiles.watch(
        *folders,
        watch_filter=ConfigFilter(roots),
        debounce=debounce_ms,
        step=STEP_MS,
        rust_timeout=READY_TICK_MS,
        yield_on_timeout=True,
        raise_interrupt=True,
    ):
        if not ready:
            ready = True
            on_ready()
        if not changes:
            continue
        paths = sorted({Path(raw) for _change, raw in changes})
        changed = [path for path in paths if path.is_file()]
        removed = [path for path in paths if not path.exists()]
        on_change(changed, removed)
