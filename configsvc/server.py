"""`configsvc serve`: the admin token, the embedded etcd when no endpoints are given, uvicorn.

`run_server` returns once the service has stopped, after SIGTERM or SIGINT too; an embedded
etcd is stopped on every way out (normal return, signal, exception). If the process is
SIGKILLed instead, the etcd child dies with it (parent-death signal), and the next start on
the same data dir cleans up whatever is left (see `configsvc.embedded`).

On SIGTERM, open watch streams end as soon as shutdown begins (see `asgi_server`), so that
a rolling restart does not wait for them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import stat
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from configsvc_schemas.wire import ADMIN_TOKEN_FILE

from configsvc.crypto.keyring import KEY_FILE_NAME, ensure_keyring, load_keyring
from configsvc.embedded.supervisor import EmbeddedEtcd
from configsvc.errors import ConfigsvcError
from configsvc.rlimits import raise_open_files_limit
from configsvc.settings import DEFAULT_ETCD_QUOTA_BYTES, MAX_WATCH_STREAMS, ServiceSettings

ADMIN_TOKEN_ENV = "CONFIGSVC_ADMIN_TOKEN"  # noqa: S105 - a variable name, not a secret
ADMIN_TOKEN_PREFIX = "csa_"  # noqa: S105 - marks generated admin tokens
ADMIN_TOKEN_BYTES = 32
"""Random bytes in a generated admin token (before URL-safe base64)."""
DATA_DIR_MODE = 0o700
UVICORN_LOG_LEVEL = "info"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def admin_token_path(data_dir: Path) -> Path:
    """Where the generated admin token lives: `<data_dir>/admin.token`."""
    return data_dir / ADMIN_TOKEN_FILE


def ensure_admin_token(settings: ServiceSettings) -> str:
    """The admin token: `settings.admin_token` (`CONFIGSVC_ADMIN_TOKEN`) if given, else the
    one in `<data_dir>/admin.token`, else a new one written there (mode 0600, dir 0700).

    Concurrent first starts agree on one token: the file is published whole, once.
    """
    return _resolve_admin_token(settings)[0]


def _resolve_admin_token(settings: ServiceSettings) -> tuple[str, str]:
    """The admin token and where it came from, for the start-up note (never the token)."""
    if settings.admin_token:
        given_by = ADMIN_TOKEN_ENV if os.environ.get(ADMIN_TOKEN_ENV) else "the settings"
        return settings.admin_token, f"given by {given_by}"
    path = admin_token_path(settings.data_dir)
    existing = _read_token(path)
    if existing is not None:
        return existing, f"in {path}"
    return _create_token_file(path), f"generated into {path}"


def _read_token(path: Path) -> str | None:
    """The token stored at `path`; None if there is no file or it is empty."""
    try:
        token = path.read_text().strip()
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigsvcError(f"cannot read the admin token file {path}: {exc}") from exc
    if token and mode & (stat.S_IRWXG | stat.S_IRWXO):
        _note(f"warning: {path} is readable by other users; run: chmod 600 {path}")
    return token or None


def _create_token_file(path: Path) -> str:
    """Write a new token to `path` unless another process just did; return the one stored."""
    path.parent.mkdir(mode=DATA_DIR_MODE, parents=True, exist_ok=True)
    token = ADMIN_TOKEN_PREFIX + secrets.token_urlsafe(ADMIN_TOKEN_BYTES)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
        try:
            os.link(tmp, path)  # publishes the whole file, and never over another's token
        except FileExistsError:
            winner = _read_token(path)
            if winner is not None:
                return winner
            os.replace(tmp, path)  # an empty file was there
        return token
    finally:
        tmp.unlink(missing_ok=True)


def run_server(settings: ServiceSettings) -> None:
    """Run the service until SIGTERM or SIGINT, then stop everything it started.

    With no `settings.etcd`, a local etcd is started under `settings.data_dir` and
    stopped on exit. Raises `ConfigsvcError` (e.g. `EtcdStartError`) if it cannot start.
    """
    tls = _tls_options(settings)  # bad TLS files or etcd settings fail before anything starts
    if settings.etcd_endpoints():
        _check_etcd_connection(settings, settings.etcd_endpoints())
    token, where = _resolve_admin_token(settings)
    settings = settings.model_copy(update={"admin_token": token})
    _note(f"admin token {where}")
    settings = _with_keyring(settings)
    open_files = raise_open_files_limit()
    if open_files < MAX_WATCH_STREAMS:
        _note(
            f"open-files limit {open_files}: at most about that many watch streams "
            "(raise the hard limit for more)"
        )
    gave_up: list[str] = []
    try:
        with _stop_signals_raise():
            _run(settings, tls, gave_up)
    except _StopSignal as stop:
        if not gave_up:
            _note(f"stopped by {signal.Signals(stop.signum).name}")
    if gave_up:
        raise ConfigsvcError(gave_up[0])


def _with_keyring(settings: ServiceSettings) -> ServiceSettings:
    """The settings with the keyring that seals secrets at rest: the given key file (checked
    now, so that a bad one stops the start at once), or on the embedded default one
    generated into `<data-dir>/secret.key`; none for an external etcd without a key file."""
    if settings.secret_key_file is not None:
        load_keyring(settings.secret_key_file)
        _note(f"secrets sealed at rest with the keys of {settings.secret_key_file}")
        return settings
    if settings.etcd_endpoints():
        _note(
            "no secret key file (CONFIGSVC_SECRET_KEY_FILE): secret fields are stored in "
            "clear in etcd (see docs/security.md)"
        )
        return settings
    path = settings.data_dir / KEY_FILE_NAME
    settings.data_dir.mkdir(mode=DATA_DIR_MODE, parents=True, exist_ok=True)
    ensure_keyring(path)
    _note(f"secrets sealed at rest with the keys of {path}")
    return settings.model_copy(update={"secret_key_file": path})


def _preload_app_modules() -> threading.Thread:
    """Import the app's modules (FastAPI, gRPC, ...: about a second) in a thread, so that the
    imports overlap the embedded etcd's start instead of following it."""

    def load() -> None:
        import configsvc.app
        import configsvc.asgi_server  # noqa: F401

    thread = threading.Thread(target=load, name="configsvc-preload", daemon=True)
    thread.start()
    return thread


def _run(settings: ServiceSettings, tls: dict[str, Any], gave_up: list[str]) -> None:
    """Start the embedded etcd if there are no endpoints (supervised: restarted when it
    exits; past its restart window the service stops, with the reason in `gave_up`), then
    serve until a stop signal."""

    def give_up(reason: str) -> None:
        gave_up.append(reason)
        os.kill(os.getpid(), signal.SIGTERM)  # a graceful stop, then exit status 1

    with contextlib.ExitStack() as stack:
        endpoints = settings.etcd_endpoints()
        preload = _preload_app_modules()
        if not endpoints:
            quota = settings.etcd_quota_bytes or DEFAULT_ETCD_QUOTA_BYTES
            etcd = stack.enter_context(
                EmbeddedEtcd(settings.data_dir, settings.etcd_binary, quota_bytes=quota)
            )
            _note(f"embedded etcd {etcd.version} at {etcd.client_url}, data in {etcd.etcd_dir}")
            etcd.supervise(give_up)
            endpoints = [etcd.client_url]
            # we own this member: its quota is known, and it is defragmented when needed
            settings = settings.model_copy(
                update={"etcd_quota_bytes": quota, "etcd_auto_defragment": True}
            )
        preload.join()
        _serve_http(settings, endpoints, tls)


def _tls_options(settings: ServiceSettings) -> dict[str, Any]:
    """uvicorn's HTTPS options (none without `--tls-cert`)."""
    if settings.tls_cert is None or settings.tls_key is None:
        return {}
    from configsvc.asgi_server import tls_options

    return tls_options(settings.tls_cert, settings.tls_key)


def _check_etcd_connection(settings: ServiceSettings, endpoints: Sequence[str]) -> None:
    """Refuse etcd settings that do not fit together, and say how etcd will be reached."""
    from configsvc.app import etcd_connection

    connection = etcd_connection(settings, endpoints)
    if connection.tls is not None:
        roots = "--etcd-ca" if settings.etcd_ca else "the system's trusted roots"
        client = ", with a client certificate" if settings.etcd_cert else ""
        _note(f"etcd over TLS, certificates checked against {roots}{client}")
    if connection.auth is not None:
        _note(f"etcd as user {connection.auth.user!r}")


def _serve_http(settings: ServiceSettings, endpoints: Sequence[str], tls: dict[str, Any]) -> None:
    """Serve the app with uvicorn until it is asked to exit."""
    # The server extra's heavier imports, only when serving.
    from configsvc.app import create_app
    from configsvc.asgi_server import make_server

    app = create_app(settings, list(endpoints))
    server = make_server(
        app,
        settings.host,
        settings.port,
        request_read_timeout=settings.request_read_timeout,
        log_level=UVICORN_LOG_LEVEL,
        lifespan="on",
        **tls,
    )
    try:
        server.run()
    except SystemExit as exc:  # how uvicorn reports a failed start (port taken, lifespan)
        if exc.code not in (None, 0):
            raise ConfigsvcError(
                f"the HTTP server on {settings.host}:{settings.port} did not start "
                "(see the log above)"
            ) from exc


class _StopSignal(BaseException):
    """SIGTERM or SIGINT arrived while the service was starting, running or stopping.

    A BaseException, like KeyboardInterrupt, so that no `except Exception` swallows it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def _stop_signals_raise() -> Iterator[None]:
    """Within: the first SIGTERM/SIGINT raises `_StopSignal`; later ones are ignored, so
    that cleanup (stopping etcd) is not cut short. uvicorn handles them itself while it
    serves, and re-raises the signal once it has shut down. Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stopping = False

    def handler(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise _StopSignal(signum)

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _note(message: str) -> None:
    """One line for the operator on stderr."""
    print(f"configsvc: {message}", file=sys.stderr, flush=True)
