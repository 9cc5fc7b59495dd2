"""Fixtures of the console tests: one etcd and one service per module, a headless Chromium
driven by Selenium, and a place for screenshots (tests/console/artifacts/, git-ignored).

The browser tests skip, saying why, when Chromium or chromedriver is missing; CI sets
`CONFIGSVC_REQUIRE_BROWSER=1` so that they fail instead (see .ci/run).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import RunningService, start_service

from configsvc.embedded.binary import find_etcd_binary
from configsvc.embedded.process import EtcdProcess

ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
CHROME_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,800",
)
REQUIRE_BROWSER = os.environ.get("CONFIGSVC_REQUIRE_BROWSER") == "1"


@pytest.fixture(scope="module")
def module_etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdProcess]:
    """One etcd for a whole test module (each test uses its own namespaces)."""
    binary = os.environ.get("CONFIGSVC_TEST_ETCD_BINARY")
    data = tmp_path_factory.mktemp("console-etcd")
    proc = EtcdProcess(
        binary=find_etcd_binary(Path(binary) if binary else None),
        data_dir=data / "etcd",
        fast_raft=True,
        log_path=data / "etcd.log",
    )
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def svc(module_etcd: EtcdProcess) -> Iterator[RunningService]:
    running = start_service(module_etcd, keepalive=1.0)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def admin(svc: RunningService) -> Iterator[httpx.Client]:
    with svc.client() as client:
        yield client


def find_browser() -> tuple[str, str] | None:
    """(chromium, chromedriver) paths, or None when either is missing."""
    chromium = next(filter(None, map(shutil.which, CHROMIUM_CANDIDATES)), None)
    driver = shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium (one per module; each test signs in afresh)."""
    found = find_browser()
    if found is None:
        reason = "no Chromium/chromedriver on PATH (apt-get install chromium chromium-driver)"
        if REQUIRE_BROWSER:
            pytest.fail(f"CONFIGSVC_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        if REQUIRE_BROWSER:
            raise
        pytest.skip("selenium is not installed (pip install -e '.[dev]')")
    chromium, driver_path = found
    options = webdriver.ChromeOptions()
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.binary_location = chromium
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
