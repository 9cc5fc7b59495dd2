"""The options every command accepts (`--url`, `--token`, `--data-dir`, `-o`) and how they
resolve.

Each resolves from the flag after the command's name, then the flag before it, then the
environment (`CONFIGSVC_URL`, `CONFIGSVC_TOKEN`), then the default (the local service and
its admin token file `<data-dir>/admin.token`). The token: `--token`, else the admin token
of a data dir given with `--data-dir`, else `CONFIGSVC_TOKEN`, else the admin token of
`CONFIGSVC_DATA_DIR` (or the default data dir). `--ca` (the CAs to trust for an `https://`
URL) is given before the command's name, or as `CONFIGSVC_CA`.
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
    DATA_DIR_ENV,
    DEFAULT_URL,
    TOKEN_ENV,
    URL_ENV,
    default_data_dir,
)

PANEL = "Connection and output"
DEFAULT_SOURCE = "default"
"""The `url_source` of a URL that no flag or variable gave."""


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
DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help=f"The service's data dir, to use its {ADMIN_TOKEN_FILE} as the token "
        f"(env: {DATA_DIR_ENV}; default: the local service's, ~/.local/share/configsvc)",
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
    data_dir: Path | None = None

    def over(self, earlier: GlobalFlags | None) -> GlobalFlags:
        """These flags, with `earlier` (given before the command's name) filling the gaps."""
        if earlier is None:
            return self
        return GlobalFlags(
            url=self.url if self.url is not None else earlier.url,
            token=self.token if self.token is not None else earlier.token,
            output=self.output if self.output is not None else earlier.output,
            ca=self.ca if self.ca is not None else earlier.ca,
            data_dir=self.data_dir if self.data_dir is not None else earlier.data_dir,
        )


@dataclass(frozen=True, slots=True)
class TokenFile:
    """The admin token file looked at, and why it gave no token (None: it gave one)."""

    path: Path
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class Target:
    """Where to connect and with which token; `url_source` and `token_source` name where
    each came from (a flag, a variable, `default`, or the token file's path); `token_file`
    is the admin token file when one was looked at; `ca` is the CA file to trust (None:
    the default bundle)."""

    url: str
    token: str | None
    token_source: str
    output: OutputFormat
    ca: Path | None = None
    url_source: str = DEFAULT_SOURCE
    token_file: TokenFile | None = None


def resolve(flags: GlobalFlags, env: Mapping[str, str] | None = None) -> Target:
    """The connection target: flag, then environment, then the local defaults."""
    env = os.environ if env is None else env
    url, url_source = _first((flags.url, "--url"), (env.get(URL_ENV), URL_ENV))
    output = flags.output or OutputFormat.TABLE
    ca = flags.ca or (Path(env[CA_ENV]) if env.get(CA_ENV) else None)

    def target(token: str | None, source: str, token_file: TokenFile | None = None) -> Target:
        return Target(url or DEFAULT_URL, token, source, output, ca, url_source, token_file)

    if flags.token:
        return target(flags.token, "--token")
    if flags.data_dir is None and env.get(TOKEN_ENV):
        return target(env[TOKEN_ENV], TOKEN_ENV)
    data_dir = flags.data_dir.expanduser() if flags.data_dir else default_data_dir(env)
    token, token_file = read_admin_token(data_dir / ADMIN_TOKEN_FILE)
    return target(token, str(token_file.path), token_file)


def read_admin_token(path: Path) -> tuple[str | None, TokenFile]:
    """The token in `path`, or None and why not (it does not exist, cannot be read, …)."""
    try:
        token = path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None, TokenFile(path, "does not exist")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        return None, TokenFile(path, f"cannot be read ({reason[:1].lower()}{reason[1:]})")
    return token, TokenFile(path, None if token else "is empty")


def _first(*candidates: tuple[str | None, str]) -> tuple[str | None, str]:
    """The first given value with the name of where it came from; else (None, `default`)."""
    for value, source in candidates:
        if value:
            return value, source
    return None, DEFAULT_SOURCE
