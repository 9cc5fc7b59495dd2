"""Fixtures of the CLI tests: the installed `configsvc` command, run in a subprocess."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli.clitools import Cli, clean_env


@pytest.fixture
def bare_cli(tmp_path: Path) -> Iterator[Cli]:
    """The command with no service URL or token set (and an empty data dir)."""
    work = tmp_path / "work"
    work.mkdir()
    cli = Cli(clean_env(tmp_path), work)
    yield cli
    for proc in cli.procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


@pytest.fixture
def cli(bare_cli: Cli, service: Any) -> Cli:
    """The command pointed at the running service with the admin token (by environment)."""
    bare_cli.env.update(CONFIGSVC_URL=service.url, CONFIGSVC_TOKEN=service.admin_token)
    return bare_cli
