"""The options every command accepts (`--url`, `--token`, `-o`) and how they resolve.

Each resolves from the flag after the command's name, then the flag before it, then the
environment (`CONFIGSVC_URL`, `CONFIGSVC_TOKEN`), then the default (the local service and
its admin token file `<data-dir>/admin.token`). `--ca` (the CAs to trust for an
`https://` URL) is given before the command's name, or as `CONFIGSVC_CA`.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from configsvc_schemas.wire import (
    ADMIN_TOKEN_FILE,
    CA_ENV,
    DEFAULT_URL,
    TOKEN_ENV,
    URL_ENV,
    default_data_dir,
)

PANEL = "Connection and output"


class OutputFormat(enum.StrEnum):
    """`table` for people (aligned columns, or YAML for one document), `json`/`yaml` for tools."""

    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        help=f"Service URL (env: {URL_ENV}; default: {DEFAULT_URL})",
        show_default=False,
        rich_help_panel=PANEL,
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        help=f"API token (env: {TOKEN_ENV}; default: <data-dir>/{ADMIN_TOKEN_FILE})",
        show_default=False,
        rich_help_panel=PANEL,
    ),
]
OutputOption = Annotated[
    OutputFormat | None,
    typer.Option(
        "-o",
        "--output",
        help="Output format (default: table)",
        show_default=False,
        case_sensitive=False,
        rich_help_panel=PANEL,
    ),
]
CaOption = Annotated[
    Path | None,
    typer.Option(
        "--ca",
        help=f"CA file (PEM) to trust for an https:// URL; before the command's name "
        f"(env: {CA_ENV}; default: the system's CA bundle)",
        show_default=False,
        rich_help_panel=PANEL,
    ),
]


@dataclass(frozen=True, slots=True)
class GlobalFlags:
    """The connection and output flags as given on the command line (None: not given)."""

    url: str | None = None
    token: str | None = None
    output: OutputFormat | None = None
    ca: Path | None = None

    def over(self, earlier: GlobalFlags | None) -> GlobalFlags:
        """These flags, with `earlier` (given before the command's name) filling the gaps."""
        if earlier is None:
            return self
        return GlobalFlags(
            url=self.url if self.url is not None else earlier.url,
            token=self.token if self.token is not None else earlier.token,
            output=self.output if self.output is not None else earlier.output,
            ca=self.ca if self.ca is not None else earlier.ca,
        )


@dataclass(frozen=True, slots=True)
class Target:
    """Where to connect and with which token; `token_source` names where the token came from;
    `ca` is the CA file to trust (None: the default bundle)."""

    url: str
    token: str | None
    token_source: str
    output: OutputFormat
    ca: Path | None = None


def resolve(flags: GlobalFlags, env: Mapping[str, str] | None = None) -> Target:
    """The connection target: flag, then environment, then the local defaults."""
    env = os.environ if env is None else env
    url = flags.url or env.get(URL_ENV) or DEFAULT_URL
    output = flags.output or OutputFormat.TABLE
    ca = flags.ca or (Path(env[CA_ENV]) if env.get(CA_ENV) else None)
    if flags.token:
        return Target(url, flags.token, "--token", output, ca)
    if env.get(TOKEN_ENV):
        return Target(url, env[TOKEN_ENV], TOKEN_ENV, output, ca)
    path = default_data_dir(env) / ADMIN_TOKEN_FILE
    try:
        token = path.read_text(encoding="utf-8").strip() or None
    except OSError:
        token = None
    return Target(url, token, str(path), output, ca)
