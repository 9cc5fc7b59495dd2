"""`serve`: run the service (needs the `server` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from configsvc.cli._errors import CliError
from configsvc.cli._options import GlobalFlags

SERVER_EXTRA_HINT = "install the server extra: pip install 'configsvc[server]'"
TLS_PANEL = "TLS and etcd access"


def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option(help="Listen address (env: CONFIGSVC_HOST; default: 127.0.0.1)")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Listen port (env: CONFIGSVC_PORT; default: 8080)")
    ] = None,
    etcd: Annotated[
        str | None,
        typer.Option(
            metavar="URL[,URL…]",
            help="etcd endpoints (env: CONFIGSVC_ETCD; default: an embedded local etcd)",
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Embedded etcd data and admin token (env: CONFIGSVC_DATA_DIR)"),
    ] = None,
    etcd_binary: Annotated[
        Path | None, typer.Option(help="The etcd binary of the embedded default")
    ] = None,
    keepalive: Annotated[
        float | None,
        typer.Option(help="Seconds between SSE keep-alives (env: CONFIGSVC_KEEPALIVE; 15)"),
    ] = None,
    history_limit: Annotated[
        int | None,
        typer.Option(help="Versions kept per document (env: CONFIGSVC_HISTORY_LIMIT; 1000)"),
    ] = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option(
            help="Serve HTTPS with this certificate chain, PEM (env: CONFIGSVC_TLS_CERT)",
            rich_help_panel=TLS_PANEL,
        ),
    ] = None,
    tls_key: Annotated[
        Path | None,
        typer.Option(
            help="The private key of --tls-cert, PEM (env: CONFIGSVC_TLS_KEY)",
            rich_help_panel=TLS_PANEL,
        ),
    ] = None,
    etcd_ca: Annotated[
        Path | None,
        typer.Option(
            help="CA bundle that etcd's certificates are checked against "
            "(env: CONFIGSVC_ETCD_CA; default for https:// etcd URLs: the system's roots)",
            rich_help_panel=TLS_PANEL,
        ),
    ] = None,
    etcd_cert: Annotated[
        Path | None,
        typer.Option(
            help="Client certificate shown to etcd, PEM (env: CONFIGSVC_ETCD_CERT)",
            rich_help_panel=TLS_PANEL,
        ),
    ] = None,
    etcd_key: Annotated[
        Path | None,
        typer.Option(
            help="The private key of --etcd-cert (env: CONFIGSVC_ETCD_KEY)",
            rich_help_panel=TLS_PANEL,
        ),
    ] = None,
    etcd_user: Annotated[
        str | None,
        typer.Option(
            help="etcd user, with etcd's auth enabled (env: CONFIGSVC_ETCD_USER)",
            rich_help_panel=TLS_PANEL,
        ),
    ] = None,
    etcd_password: Annotated[
        str | None,
        typer.Option(
            help="Its password; prefer the variable, a flag shows in `ps` "
            "(env: CONFIGSVC_ETCD_PASSWORD)",
            rich_help_panel=TLS_PANEL,
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the configsvc service (with no --etcd: a supervised local etcd under the data dir)."""
    try:
        from pydantic import ValidationError

        from configsvc.errors import ConfigsvcError
        from configsvc.server import run_server
        from configsvc.settings import ServiceSettings
    except ImportError as exc:
        raise CliError(
            f"serve needs {exc.name or 'the server modules'}; {SERVER_EXTRA_HINT}"
        ) from None
    if data_dir is None and isinstance(ctx.obj, GlobalFlags):
        data_dir = ctx.obj.data_dir  # `configsvc --data-dir DIR serve`
    given: dict[str, Any] = {
        "host": host,
        "port": port,
        "etcd": etcd,
        "data_dir": data_dir,
        "etcd_binary": etcd_binary,
        "keepalive": keepalive,
        "history_limit": history_limit,
        "tls_cert": tls_cert,
        "tls_key": tls_key,
        "etcd_ca": etcd_ca,
        "etcd_cert": etcd_cert,
        "etcd_key": etcd_key,
        "etcd_user": etcd_user,
        "etcd_password": etcd_password,
    }
    try:
        settings = ServiceSettings(
            **{key: value for key, value in given.items() if value is not None}
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in exc.errors()
        )
        raise CliError(f"invalid settings: {problems}") from None
    try:
        run_server(settings)
    except ConfigsvcError as exc:
        raise CliError(str(exc)) from None
