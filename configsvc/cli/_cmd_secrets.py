"""`secrets rotate-key`: a new key for secrets at rest, and everything re-sealed with it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from configsvc_schemas.wire import default_data_dir

from configsvc.cli._errors import CliError
from configsvc.cli._options import DataDirOption, OutputOption, TokenOption, UrlOption
from configsvc.cli._session import flags_of, open_session
from configsvc.crypto.keyring import (
    KEY_FILE_NAME,
    KeyringError,
    load_keyring,
    write_keyring,
)

app = typer.Typer(help="Secrets sealed at rest (needs an admin token).")


@app.command("rotate-key")
def rotate_key(
    ctx: typer.Context,
    key_file: Annotated[
        Path | None,
        typer.Option(
            "--key-file",
            help="The service's key file, to add a new active key to (default: "
            "<data-dir>/secret.key of the embedded default, when it is here)",
        ),
    ] = None,
    new_key: Annotated[
        bool,
        typer.Option(
            "--new-key/--no-new-key",
            help="Add a new active key first (--no-new-key: re-seal with the active one)",
        ),
    ] = True,
    url: UrlOption = None,
    token: TokenOption = None,
    data_dir: DataDirOption = None,
    output: OutputOption = None,
) -> None:
    """Add a new active key to the key file (keeping the old ones), then have the service
    re-seal every stored secret with it. On a cluster, give every instance the new key
    file before running this (see docs/security.md)."""
    added = ""
    if new_key:
        given_dir = flags_of(ctx, url, token, output, data_dir).data_dir
        path = key_file or (given_dir or default_data_dir()) / KEY_FILE_NAME
        try:
            keyring = load_keyring(path)
        except KeyringError as exc:
            raise CliError(f"{exc}; give the service's key file with --key-file") from None
        rotated = keyring.with_new_active()
        write_keyring(rotated, path)
        typer.echo(f"added key {rotated.active} to {path} (now active)", err=True)
        added = (
            f" (key {rotated.active} was added to {path}: once the service can reach it, "
            "re-seal with `configsvc secrets rotate-key --no-new-key`)"
        )
    with open_session(ctx, url, token, output, data_dir) as s:
        try:
            result = s.api.request("POST", "/v1/admin/secrets/rotate").json()
        except CliError as exc:
            raise CliError(exc.message + added) from None
        s.out.emit(
            result,
            lambda: s.out.line(
                f"secrets sealed with {result['active']}: {result['rewritten']} of "
                f"{result['examined']} stored specs re-sealed; keys in use: "
                f"{', '.join(result['keys_in_use'])}"
            ),
        )
