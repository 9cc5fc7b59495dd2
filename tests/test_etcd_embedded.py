"""EmbeddedEtcd against real etcd processes: lifecycle, data, versions, stale and orphaned etcd."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from configsvc.embedded.binary import etcd_binary_version, find_etcd_binary, format_version
from configsvc.embedded.process import EtcdAddressInUse, EtcdProcess
from configsvc.embedded.stale import process_gone
from configsvc.embedded.supervisor import EmbeddedEtcd
from configsvc.errors import EtcdStartError

STARTUP_BOUND = 10.0
"""Generous bound on start-to-healthy (typically 0.1-2 s with default raft timers)."""
GONE_TIMEOUT = 5.0
ELF_MAGIC = b"\x7fELF"

CHILD_OWNER = """
import sys, time
from pathlib import Path
from configsvc.embedded.supervisor import EmbeddedEtcd
etcd = EmbeddedEtcd(Path(sys.argv[1]))
etcd.start()
print(etcd.pid, etcd.client_url, flush=True)
time.sleep(600)
"""


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def etcd_put(url: str, key: str, value: str) -> None:
    """Write through etcd's v3 JSON gateway."""
    resp = httpx.post(f"{url}/v3/kv/put", json={"key": b64(key), "value": b64(value)})
    resp.raise_for_status()


def etcd_get(url: str, key: str) -> str | None:
    resp = httpx.post(f"{url}/v3/kv/range", json={"key": b64(key)})
    resp.raise_for_status()
    kvs = resp.json().get("kvs", [])
    return base64.b64decode(kvs[0]["value"]).decode() if kvs else None


def is_healthy(url: str) -> bool:
    resp = httpx.get(f"{url}/health")
    return resp.status_code == 200 and resp.json()["health"] == "true"


def wait_gone(pid: int, timeout: float = GONE_TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process_gone(pid):
            return True
        time.sleep(0.02)
    return False


def timed_start(etcd: EmbeddedEtcd) -> float:
    started = time.perf_counter()
    etcd.start()
    return time.perf_counter() - started


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def embedded(data_dir: Path) -> Iterator[EmbeddedEtcd]:
    etcd = EmbeddedEtcd(data_dir)
    yield etcd
    etcd.stop()


def test_binary_is_the_real_etcd_not_the_python_wrapper() -> None:
    binary = find_etcd_binary()
    assert binary.read_bytes()[:4] == ELF_MAGIC
    assert etcd_binary_version(binary) >= (3, 4, 0)


def test_start_healthy_stop(embedded: EmbeddedEtcd, capsys: pytest.CaptureFixture[str]) -> None:
    elapsed = timed_start(embedded)
    with capsys.disabled():
        print(f"\nembedded etcd {embedded.version}: fresh start to healthy in {elapsed:.3f}s")
    assert elapsed < STARTUP_BOUND
    assert is_healthy(embedded.client_url)
    pid = embedded.pid
    assert pid is not None
    assert embedded.etcd_dir.is_dir()
    assert embedded.etcd_dir.stat().st_mode & 0o777 == 0o700
    assert embedded.pid_path.read_text().strip() == str(pid)
    assert embedded.version_path.read_text().strip() == embedded.version
    assert embedded.log_path.stat().st_size > 0

    embedded.stop()
    assert wait_gone(pid)
    assert not embedded.pid_path.exists()
    assert embedded.pid is None
    embedded.stop()  # idempotent


def test_restart_keeps_data_and_ports(
    embedded: EmbeddedEtcd, capsys: pytest.CaptureFixture[str]
) -> None:
    embedded.start()
    url = embedded.client_url
    etcd_put(url, "/configsvc/test", "kept")
    embedded.stop()

    timings = []
    for _ in range(3):
        timings.append(timed_start(embedded))
        assert embedded.client_url == url
        assert etcd_get(url, "/configsvc/test") == "kept"
        embedded.stop()
    with capsys.disabled():
        print(f"\nembedded etcd restarts to healthy: {', '.join(f'{t:.3f}s' for t in timings)}")
    assert max(timings) < STARTUP_BOUND


def test_context_manager_stops_etcd(data_dir: Path) -> None:
    with EmbeddedEtcd(data_dir) as etcd:
        pid = etcd.pid
        assert pid is not None
        assert is_healthy(etcd.client_url)
    assert wait_gone(pid)


def test_client_url_before_start_is_an_error(embedded: EmbeddedEtcd) -> None:
    with pytest.raises(RuntimeError, match="not running"):
        _ = embedded.client_url


def test_taken_port_moves_to_a_free_one(embedded: EmbeddedEtcd) -> None:
    embedded.start()
    old_port = int(embedded.client_url.rsplit(":", 1)[1])
    embedded.stop()
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", old_port))
        squatter.listen()
        embedded.start()
        assert embedded.client_url != f"http://127.0.0.1:{old_port}"
        assert is_healthy(embedded.client_url)
    assert json.loads(embedded.ports_path.read_text())["client"] != old_port


def test_older_etcd_is_refused(embedded: EmbeddedEtcd) -> None:
    embedded.start()
    embedded.stop()
    embedded.version_path.write_text("99.0.0\n")

    with pytest.raises(EtcdStartError, match=r"99\.0\.0.*cannot downgrade") as info:
        embedded.start()
    assert str(find_etcd_binary()) in str(info.value)
    assert embedded.pid is None
    assert not embedded.pid_path.exists()
    assert embedded.version_path.read_text().strip() == "99.0.0"

    # The refusal released the data dir: with the record back, the same dir starts.
    embedded.version_path.write_text("3.0.0\n")
    embedded.start()
    assert is_healthy(embedded.client_url)


def test_newer_etcd_updates_the_record(embedded: EmbeddedEtcd) -> None:
    embedded.start()
    embedded.stop()
    embedded.version_path.write_text("3.0.0\n")
    embedded.start()
    current = format_version(etcd_binary_version(find_etcd_binary()))
    assert embedded.version_path.read_text().strip() == current


def test_second_owner_of_a_data_dir_is_refused(embedded: EmbeddedEtcd, data_dir: Path) -> None:
    embedded.start()
    with pytest.raises(EtcdStartError, match=f"in use by another configsvc process.*{os.getpid()}"):
        EmbeddedEtcd(data_dir).start()
    assert is_healthy(embedded.client_url)


@pytest.mark.parametrize("wedged", [False, True], ids=["running", "stopped"])
def test_stale_etcd_in_pid_file_is_stopped(
    embedded: EmbeddedEtcd, data_dir: Path, tmp_path: Path, wedged: bool
) -> None:
    """An etcd left on the data dir by an owner that died without taking it along."""
    embedded.start()
    etcd_put(embedded.client_url, "k", "v")
    embedded.stop()

    stale = EtcdProcess(
        binary=find_etcd_binary(), data_dir=embedded.etcd_dir, log_path=tmp_path / "stale.log"
    )
    stale.start()
    try:
        assert stale.pid is not None
        embedded.pid_path.write_text(f"{stale.pid}\n")
        if wedged:
            stale.signal(signal.SIGSTOP)

        embedded.start()
        assert process_gone(stale.pid)
        assert etcd_get(embedded.client_url, "k") == "v"
    finally:
        stale.stop()


def test_pid_file_of_an_unrelated_process_is_left_alone(embedded: EmbeddedEtcd) -> None:
    embedded.data_dir.mkdir(parents=True)
    with subprocess.Popen(["sleep", "60"]) as bystander:
        try:
            embedded.pid_path.write_text(f"{bystander.pid}\n")
            embedded.start()
            assert is_healthy(embedded.client_url)
            assert bystander.poll() is None
        finally:
            bystander.kill()


def test_sigkill_of_the_owner_takes_etcd_along(data_dir: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", CHILD_OWNER, str(data_dir)], stdout=subprocess.PIPE, text=True
    ) as owner:
        assert owner.stdout is not None
        line = owner.stdout.readline().split()
        try:
            assert line, "the child process did not start etcd"
            etcd_pid, url = int(line[0]), line[1]
            etcd_put(url, "survives", "yes")
        finally:
            owner.kill()
            owner.wait()
    assert wait_gone(etcd_pid), f"etcd {etcd_pid} outlived its SIGKILLed owner"

    with EmbeddedEtcd(data_dir) as etcd:
        assert etcd_get(etcd.client_url, "survives") == "yes"


def test_failed_start_names_the_reason(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        process = EtcdProcess(
            binary=find_etcd_binary(),
            data_dir=tmp_path / "etcd",
            client_port=squatter.getsockname()[1],
            log_path=tmp_path / "etcd.log",
        )
        with pytest.raises(EtcdAddressInUse, match="address already in use"):
            process.start()
    assert not process.running
