"""`backup FILE` and `restore FILE`: the whole store, over the API (admin token)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import httpx
import typer
from configsvc_schemas.wire import default_data_dir

from configsvc.cli._cmd_docs import YesOption
from configsvc.cli._errors import CliError
from configsvc.cli._options import DataDirOption, OutputOption, TokenOption, UrlOption
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
    data_dir: DataDirOption = None,
    output: OutputOption = None,
) -> None:
    """Write the whole store to FILE, read at one revision; secrets stay sealed.

    Every namespace, document, history record, user kind, token hash and audit record. A
    restore needs the same key file."""
    with open_session(ctx, url, token, output, data_dir) as s:
        tmp = file.with_name(f".{file.name}.partial")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
            with os.fdopen(fd, "wb") as out, s.api.stream(BACKUP_PATH) as response:
                for chunk in response.iter_bytes():
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            header = _complete_header(tmp, file)
            os.replace(tmp, file)
        except OSError as exc:
            raise CliError(f"cannot write {file}: {exc.strerror or exc}") from None
        except httpx.HTTPError as exc:
            raise s.api.transport_error(exc) from None
        finally:
            tmp.unlink(missing_ok=True)
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
    data_dir: DataDirOption = None,
    output: OutputOption = None,
) -> None:
    """Restore FILE (from `configsvc backup`) into an empty store, exactly as it was.

    Documents, versions and history, user kinds, tokens and the audit log come back."""
    header = _complete_header(file, file)
    with open_session(ctx, url, token, output, data_dir) as s:
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


def _complete_header(path: Path, file: Path) -> dict[str, object]:
    """The first line of the backup at `path` (named `file` to the user), having counted
    that the lines after it are as many as it announces; `CliError` otherwise."""
    try:
        with path.open("rb") as f:
            first = f.readline()
            lines = sum(1 for line in f if line.strip())
    except OSError as exc:
        raise CliError(f"cannot read {file}: {exc.strerror or exc}") from None
    try:
        header = json.loads(first)
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != "configsvc-backup":
        raise CliError(f"{file} is not a configsvc backup (write one with `configsvc backup`)")
    if isinstance(header.get("keys"), int) and header["keys"] != lines:
        raise CliError(
            f"{file} is incomplete: its header announces {header['keys']} keys, it holds "
            f"{lines} (cut off?); take the backup again"
        )
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
    """Snapshot the running embedded etcd with etcdctl (secrets in it stay sealed).

    The alternative to `configsvc backup` on one machine. Restore it with etcd's
    `etcdutl snapshot restore` (see docs/operations.md)."""
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
