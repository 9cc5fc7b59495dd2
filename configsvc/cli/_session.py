"""What a command works with: the API connection, the printer and the secret masker."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from configsvc.cli._errors import CliError
from configsvc.cli._http import Api
from configsvc.cli._options import GlobalFlags, OutputFormat, resolve
from configsvc.cli._output import Printer
from configsvc.cli._secrets import SecretMasker

YES = frozenset({"y", "yes"})


@dataclass(frozen=True, slots=True)
class Session:
    api: Api
    out: Printer
    masker: SecretMasker


def flags_of(
    ctx: typer.Context,
    url: str | None,
    token: str | None,
    output: OutputFormat | None,
    data_dir: Path | None = None,
) -> GlobalFlags:
    """The command's own flags over those given before its name (kept in `ctx.obj`)."""
    earlier = ctx.obj if isinstance(ctx.obj, GlobalFlags) else None
    return GlobalFlags(url, token, output, data_dir=data_dir).over(earlier)


@contextmanager
def open_session(
    ctx: typer.Context,
    url: str | None,
    token: str | None,
    output: OutputFormat | None,
    data_dir: Path | None = None,
) -> Iterator[Session]:
    """A session for the command of `ctx`, closed when the command ends."""
    target = resolve(flags_of(ctx, url, token, output, data_dir))
    with Api.to(target) as api:
        yield Session(api, Printer(target.output), SecretMasker(lambda: load_schemas(api)))


def load_schemas(api: Api) -> dict[str, Any]:
    """Each kind's JSON Schema, by kind name."""
    items = api.get("/v1/schemas").get("items", [])
    return {item["kind"]: item["schema"] for item in items}


def confirm(question: str) -> None:
    """Ask on stderr; `CliError` unless the answer is yes (also when stdin is closed)."""
    sys.stderr.write(f"{question} [y/N]: ")
    sys.stderr.flush()
    answer = sys.stdin.readline()
    if not sys.stdin.isatty():
        sys.stderr.write("\n")  # the answer was not echoed
    if answer.strip().lower() not in YES:
        raise CliError("cancelled, nothing changed (pass --yes to skip the question)")
