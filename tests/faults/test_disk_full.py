"""The embedded etcd's disk fills up: `configsvc serve` with its data dir on a small tmpfs.

`configsvc serve` (no `--etcd`) starts its own etcd under `<data-dir>/etcd`. With a writer,
an SDK client and streams steady, the filesystem is filled from outside (one file taking
every free byte) and a large document is written so that etcd's database must grow. Then:
every write answers a clean error (503) or is acknowledged, no acknowledged write is lost
(etcd's write-ahead log is replayed), and once the file is removed the service must come
back by itself, or exit so that its supervisor restarts it. At the end, a start on a full
disk shows what the operator is told.

What etcd 3.5 does (seen here): its WAL segments are preallocated (64 MB each, the next
one too), so appends keep working; its database file must grow, and the first commit that
cannot be written is fatal (`failed to commit tx`, `no space left on device`): etcd exits.
A start on a full disk fails too (it cannot preallocate a WAL segment).
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import ADMIN_TOKEN

from tests.faults._scenario import DOCS, NAMESPACE, Scenario
from tests.faults._services import EmbeddedServe
from tests.faults._streams import QUICK_BACKOFF
from tests.faults._writer import AMBIGUOUS, large_spec
from tests.sdk.helpers import wait_until

pytestmark = pytest.mark.timeout(240)

DISK_BYTES = 160 * 1024 * 1024
"""The data dir's filesystem: two preallocated 64 MB WAL segments and room to spare."""
BASELINE_ACKS = 20
ACKS_AFTER = 20
STREAMS = 10
FAULT_WITHIN = 30.0
"""Seconds within which a full disk must show (a write refused, or etcd gone)."""
RECOVER_WITHIN = 10.0
"""Seconds after the disk is freed within which the service must be back by itself (a
restart backoff must try again within that), or have exited so that its own supervisor
restarts it."""
LARGE_WRITES = 20
LARGE_DOC_PATH = "/v1/configs/ballast/big"
ETCD_LOG = "etcd.log"
START_EXIT_WITHIN = 10.0
"""Seconds a start on a full disk is watched (it gives up within one here)."""


class EtcdLeftDead(Exception):
    """The embedded etcd died and `configsvc serve` neither restarted it nor exited."""


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of `DISK_BYTES` (root only), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("disk full: needs root to mount a small tmpfs")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES},mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"disk full: cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)


def fill(disk: Path) -> Path:
    """A file that takes every free byte of `disk` (etcd may write meanwhile: each
    allocation that no longer fits is retried at half the size, down to one block)."""
    filler = disk / "filler"
    stat = os.statvfs(disk)
    size, chunk = 0, stat.f_bavail * stat.f_frsize
    with open(filler, "wb") as f:
        while chunk >= stat.f_frsize:
            try:
                os.posix_fallocate(f.fileno(), size, chunk)
                size += chunk
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                chunk //= 2
    return filler


def process_gone(pid: int | None) -> bool:
    """Whether `pid` exited (gone, or a zombie nobody reaped)."""
    if pid is None:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


def answer(url: str, path: str) -> int:
    """The status of an admin GET of `path` (0: no answer)."""
    try:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        return httpx.get(f"{url}{path}", headers=headers, timeout=5).status_code
    except httpx.HTTPError:
        return 0


def write_large(api: httpx.Client, until: float) -> tuple[list[int], int]:
    """Write large documents (the database must grow) until one fails or `until`; returns
    the answers' statuses and the last version acknowledged (0: none)."""
    statuses, acked = [], 0
    while time.monotonic() < until and len(statuses) < LARGE_WRITES:
        body = {"kind": "RateLimits", "spec": large_spec(), "message": "ballast"}
        try:
            response = api.put(LARGE_DOC_PATH, json=body)
        except httpx.HTTPError:
            statuses.append(0)
            break
        statuses.append(response.status_code)
        if response.status_code not in (200, 201):
            break
        acked = int(response.json()["version"])
    return statuses, acked


def etcd_fatal(serve: EmbeddedServe) -> str | None:
    """etcd's last fatal log entry (its log is on the full disk too: it may be cut short)."""
    try:
        lines = (serve.data_dir / ETCD_LOG).read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("level") in ("fatal", "panic"):
            return f"{entry.get('msg')}: {entry.get('error')}"
    return None


def start_on_full_disk(serve: EmbeddedServe, disk: Path) -> dict[str, Any]:
    """Stop the service, fill the disk, start it: what does the operator see?"""
    serve.stop()
    filler = fill(disk)
    logged = len(serve.log_text())
    try:
        serve.spawn()
        assert serve.proc is not None
        try:
            code: int | None = serve.proc.wait(START_EXIT_WITHIN)
        except subprocess.TimeoutExpired:
            code = None
        said = [line for line in serve.log_text()[logged:].splitlines() if line.strip()]
    finally:
        serve.kill()
        filler.unlink()
    return {"exit_code": code, "last_line": said[-1] if said else None}


def test_embedded_etcd_disk_full(
    small_disk: Path,
    tmp_path: Path,
    etcd_binary: Path | None,
    report: Callable[[dict[str, Any]], None],
) -> None:
    serve = EmbeddedServe("serve", small_disk / "data", tmp_path / "serve.log", etcd_binary)
    scenario = Scenario(None, [serve], tmp_path)
    try:
        serve.start()
        writer = scenario.start_writer()
        scenario.add_sdk_clients(1)
        scenario.add_streams(STREAMS, **QUICK_BACKOFF)
        writer.wait_acks(BASELINE_ACKS, after=time.monotonic())
        etcd_pid = serve.etcd_pid()

        filler = fill(small_disk)
        filled_at = time.monotonic()
        with serve.client() as api:
            large, large_acked = write_large(api, filled_at + FAULT_WITHIN)
        wait_until(
            lambda: writer.log.first(AMBIGUOUS, after=filled_at) is not None,
            FAULT_WITHIN,
            "a write failing on the full disk",
        )
        first_failure = writer.log.first(AMBIGUOUS, after=filled_at)
        assert first_failure is not None
        wait_until(lambda: process_gone(etcd_pid), FAULT_WITHIN, "etcd exiting")
        etcd_gone_s = time.monotonic() - filled_at
        time.sleep(1.0)  # what the service answers with etcd gone
        during = {
            "write": writer.log.failures[-1].reason,
            "read": answer(serve.url, f"/v1/configs/{NAMESPACE}/{DOCS[0]}"),
            "readyz": serve.readiness(timeout=5)[0],
            "healthz": answer(serve.url, "/healthz"),
        }
        acked_after_fill = writer.log.acks_after(filled_at)
        failed_reasons = sorted({f.reason for f in writer.log.failures if f.ended > filled_at})
        assert all(r.startswith("503") for r in failed_reasons if r[:1].isdigit()), failed_reasons

        filler.unlink()
        freed_at = time.monotonic()
        recovered = False
        while time.monotonic() < freed_at + RECOVER_WITHIN:
            if serve.exit_code() is not None or serve.readiness()[0] == 200:
                recovered = True
                break
            time.sleep(0.1)
        exit_code = serve.exit_code()
        if not recovered or exit_code is not None:
            serve.stop()  # as an operator (or systemd, after an exit) would
            serve.start()
        back_at = time.monotonic()
        writer.wait_acks(ACKS_AFTER, after=back_at)
        with serve.client() as api:
            large_now = api.get(LARGE_DOC_PATH).json().get("version", 0)
        assert large_now >= large_acked, f"acknowledged large write v{large_acked} lost"

        figures = scenario.finish()
        fatal = etcd_fatal(serve)
        on_full_disk = start_on_full_disk(serve, small_disk)
        report(
            {
                "disk_bytes": DISK_BYTES,
                "acked_after_fill": acked_after_fill,
                "large_writes_after_fill": large,
                "etcd_fatal": fatal,
                "first_write_failure_after_fill_s": round(first_failure.ended - filled_at, 3),
                "etcd_exited_after_fill_s": round(etcd_gone_s, 3),
                "answers_with_etcd_gone": during,
                "write_failures": failed_reasons,
                "recovered_by_itself": recovered and exit_code is None,
                "serve_exit_code": exit_code,
                "write_gap_s": round(writer.log.gap_around(first_failure.ended), 3),
                "start_on_full_disk": on_full_disk,
                **figures,
            }
        )
        if not recovered:
            raise EtcdLeftDead(
                f"etcd exited {etcd_gone_s:.1f} s after the disk filled; {RECOVER_WITHIN:.0f} s "
                f"after space was freed configsvc serve still runs without it: {during}"
            )
    finally:
        scenario.close()
        serve.kill()
