"""`backup FILE` and `restore FILE`: the whole store, over the API (admin token)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from configsvc_schemas.wire import default_data_dir

from configsvc.cli._cmd_docs import YesOption
from configsvc.cli._errors import CliError
from configsvc.cli._options import OutputOption, TokenOption, UrlOption
from configsvc.cli._session import confirm, open_session
from configsvc.embedded.binary import find_etcd_binary
from configsvc.embedded.process import LOOPBACK
from configsvc.errors import EtcdStartError

FILE_MODE = 0o600
CHUNK = 256 * 1024
NDJSON = "application/x-ndjson"
BACKUP_PATH = "/v1/admin/backup"
RESTORE_PATH = "/v1/admin/restore"


def backup(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Where to write the backup (mode 0600)")],
    url: UrlOption = None,
    token: TokenOption = None,
    output: OutputOption = None,
) -> None:
    """Write every namespace, document, history record, user kind, token hash and audit
    record to FILE, read at one store revision; secrets stay sealed (a restore needs the
    same key file)."""
    with open_session(ctx, url, token, output) as s:
        tmp = file.with_name(f".{file.name}.partial")
        lines = 0
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
            with os.fdopen(fd, "wb") as out, s.api.stream(BACKUP_PATH) as response:
                for chunk in response.iter_bytes():
                    out.write(chunk)
                    lines += chunk.count(b"\n")
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, file)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise CliError(f"cannot write {file}: {exc.strerror or exc}") from None
        header = _header(file)
        summary = {"file": str(file), "revision": header["revision"], "keys": header["keys"]}
        s.out.emit(
            summary,
            lambda: s.out.line(
                f"wrote {file}: {header['keys']} keys at store revision {header['revision']}"
            ),
        )


def restore(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A file written by `configsvc backup`")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace what the store holds (else it must be empty)")
    ] = False,
    yes: YesOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
    output: OutputOption = None,
) -> None:
    """Restore FILE into an empty store: documents, versions and history, user kinds,
    tokens and the audit log come back as they were."""
    header = _header(file)
    with open_session(ctx, url, token, output) as s:
        if force and not yes:
            confirm(f"Replace everything the service at {s.api.url} holds with {file}?")
        result = s.api.upload(
            RESTORE_PATH, _chunks(file), params={"force": force}, content_type=NDJSON
        )
        s.out.emit(
            result,
            lambda: s.out.line(
                f"restored {result['keys']} keys ({result['documents']} documents) from "
                f"{file}, a backup of store revision {header['revision']}"
            ),
        )


def _header(file: Path) -> dict[str, object]:
    """The first line of a backup file; `CliError` when it is not one."""
    try:
        with file.open("rb") as f:
            first = f.readline()
    except OSError as exc:
        raise CliError(f"cannot read {file}: {exc.strerror or exc}") from None
    try:
        header = json.loads(first)
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != "configsvc-backup":
        raise CliError(f"{file} is not a configsvc backup (write one with `configsvc backup`)")
    return header


def _chunks(file: Path) -> Iterator[bytes]:
    with file.open("rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


def etcd_snapshot(
    file: Annotated[Path, typer.Argument(help="Where to write etcd's snapshot")],
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir", help="The embedded default's data dir (env: CONFIGSVC_DATA_DIR)"
        ),
    ] = None,
) -> None:
    """Snapshot the embedded default's etcd (running) with etcdctl: the alternative to
    `configsvc backup` on one machine. Secrets in it stay sealed. Restore it with
    etcd's `etcdutl snapshot restore` (see docs/operations.md)."""
    from configsvc.embedded.supervisor import PORTS_FILE_NAME  # the server extra's

    directory = data_dir or default_data_dir()
    try:
        ports = json.loads((directory / PORTS_FILE_NAME).read_text())
        endpoint = f"http://{LOOPBACK}:{int(ports['client'])}"
        etcdctl = find_etcd_binary().parent / "etcdctl"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CliError(
            f"no embedded etcd found under {directory} ({exc}): give --data-dir, or use "
            "`configsvc backup FILE`, which works against any service"
        ) from None
    except EtcdStartError as exc:
        raise CliError(str(exc)) from None
    done = subprocess.run(
        [str(etcdctl), "--endpoints", endpoint, "snapshot", "save", str(file)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise CliError(f"etcdctl could not snapshot {endpoint}: {reason}")
    os.chmod(file, FILE_MODE)
    typer.echo(f"wrote etcd's snapshot of {endpoint} to {file}")
