"""ClientOptions: every interval and threshold of the client, as one immutable value.

Defaults suit production; tests pass milliseconds. Each field is checked at construction,
so a client never starts with a nonsensical interval.
"""

from __future__ import annotations

import dataclasses
import os
import ssl
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from configsvc_schemas.wire import (
    ADMIN_TOKEN_FILE,
    CA_ENV,
    DEFAULT_REPORT_INTERVAL,
    DEFAULT_URL,
    MAX_REPORT_INTERVAL,
    MIN_REPORT_INTERVAL,
    TOKEN_ENV,
    URL_ENV,
    default_data_dir,
)

DEFAULT_START_TIMEOUT = 10.0
DEFAULT_POLL_INTERVAL = 10.0
DEFAULT_BACKOFF_INITIAL = 0.5
DEFAULT_BACKOFF_MAX = 30.0
DEFAULT_BACKOFF_RESET_AFTER = 60.0
DEFAULT_SERVER_KEEPALIVE = 15.0
SILENCE_FACTOR = 2.0
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 10.0
DEFAULT_CACHE_FALLBACK_AFTER = 2.0
DEFAULT_AUTH_RETRY_INTERVAL = 60.0
DEFAULT_RELOAD_DEBOUNCE = 0.1
DEFAULT_STOP_TIMEOUT = 5.0
DEFAULT_REPORT_COALESCE = 0.25
DEFAULT_REPORT_TIMEOUT = 5.0
DEFAULT_REPORT_RETRY = 1.0
DEFAULT_GOODBYE_TIMEOUT = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportOptions:
    """How a client reports to the fleet view (`GET /v1/fleet`), in seconds.

    >>> ReportOptions(interval=10).interval
    10
    """

    enabled: bool = True
    """Report at all (clients of `from_files` and `from_source` never report)."""
    interval: float = DEFAULT_REPORT_INTERVAL
    """Between reports; an instance silent for 3 intervals leaves the fleet view."""
    coalesce: float = DEFAULT_REPORT_COALESCE
    """After an applied or rejected change, how long to gather more before reporting."""
    timeout: float = DEFAULT_REPORT_TIMEOUT
    """For one report's answer."""
    retry: float = DEFAULT_REPORT_RETRY
    """Upper bound of the first delay after a failed report (full jitter; it doubles on
    each failure, up to `interval`)."""
    goodbye_timeout: float = DEFAULT_GOODBYE_TIMEOUT
    """How long `stop()` may spend saying goodbye."""

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise ValueError(f"ReportOptions.enabled must be a bool, not {self.enabled!r}")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name != "enabled" and (not _is_number(value) or value <= 0):
                raise ValueError(f"ReportOptions.{f.name} must be a number > 0, not {value!r}")
        if not MIN_REPORT_INTERVAL <= self.interval <= MAX_REPORT_INTERVAL:
            raise ValueError(
                f"ReportOptions.interval must be {MIN_REPORT_INTERVAL:g}-{MAX_REPORT_INTERVAL:g}"
                f" s, not {self.interval!r}"
            )

    def replace(self, **changes: Any) -> ReportOptions:
        """A copy with `changes` applied (and checked)."""
        return dataclasses.replace(self, **changes)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientOptions:
    """Timing of a `ConfigClient`, in seconds.

    >>> fast = ClientOptions(poll_interval=0.05, backoff_initial=0.01, backoff_max=0.1)
    >>> fast.replace(poll_interval=1.0).poll_interval
    1.0
    """

    start_timeout: float = DEFAULT_START_TIMEOUT
    """How long `start()` waits for a first value before raising `ConfigUnavailable`."""
    poll_interval: float = DEFAULT_POLL_INTERVAL
    """Between polls while no stream is open."""
    backoff_initial: float = DEFAULT_BACKOFF_INITIAL
    """Upper bound of the first reconnect delay (full jitter: uniform(0, bound))."""
    backoff_max: float = DEFAULT_BACKOFF_MAX
    """Cap of the reconnect delay bound, which doubles on each failed attempt."""
    backoff_reset_after: float = DEFAULT_BACKOFF_RESET_AFTER
    """A stream healthy this long resets the backoff to its first step."""
    server_keepalive: float = DEFAULT_SERVER_KEEPALIVE
    """The service's keep-alive interval (`--keepalive`)."""
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    """To open a connection (stream or poll)."""
    read_timeout: float = DEFAULT_READ_TIMEOUT
    """For a poll's answer."""
    cache_fallback_after: float = DEFAULT_CACHE_FALLBACK_AFTER
    """At start, serve the cache once the service has not answered for this long (sooner
    when both the stream and a poll have already failed)."""
    auth_retry_interval: float = DEFAULT_AUTH_RETRY_INTERVAL
    """After a 401/403, retry only this often (the token may be fixed; do not hammer)."""
    reload_debounce: float = DEFAULT_RELOAD_DEBOUNCE
    """`from_files`: how long file changes are gathered before one reload."""
    stop_timeout: float = DEFAULT_STOP_TIMEOUT
    """How long `stop()` waits for the client to wind down."""
    reports: ReportOptions = dataclasses.field(default_factory=ReportOptions)
    """Reports to the fleet view (`ReportOptions`)."""

    def __post_init__(self) -> None:
        if not isinstance(self.reports, ReportOptions):
            raise ValueError(f"ClientOptions.reports must be ReportOptions, not {self.reports!r}")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name != "reports" and (not _is_number(value) or value <= 0):
                raise ValueError(f"ClientOptions.{f.name} must be a number > 0, not {value!r}")
        if self.backoff_max < self.backoff_initial:
            raise ValueError("ClientOptions.backoff_max must be >= backoff_initial")

    @property
    def silence_timeout(self) -> float:
        """A stream quiet for longer than this (twice the keep-alive) counts as dropped."""
        return SILENCE_FACTOR * self.server_keepalive

    def replace(self, **changes: Any) -> ClientOptions:
        """A copy with `changes` applied (and checked)."""
        return dataclasses.replace(self, **changes)


def resolve_urls(url: str | Sequence[str] | None) -> tuple[str, ...]:
    """The service URLs: the argument, else `CONFIGSVC_URL`, else the local default.

    A string may list several URLs separated by commas; they are tried in order.
    """
    raw: Sequence[str]
    if url is None:
        url = os.environ.get(URL_ENV) or DEFAULT_URL
    raw = url.split(",") if isinstance(url, str) else url
    urls = tuple(u.strip().rstrip("/") for u in raw if u.strip())
    if not urls:
        raise ValueError("no service URL given")
    for u in urls:
        if not u.startswith(("http://", "https://")):
            raise ValueError(f"service URL must be http:// or https://, not {u!r}")
    return urls


def resolve_token(token: str | None) -> str | None:
    """The argument, else `CONFIGSVC_TOKEN`, else the local admin token file if readable."""
    if token:
        return token
    from_env = os.environ.get(TOKEN_ENV)
    if from_env:
        return from_env.strip()
    try:
        text = (default_data_dir() / ADMIN_TOKEN_FILE).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text or None


@dataclass(frozen=True, slots=True)
class TlsOptions:
    """How a client checks an `https://` service's certificate.

    `ca`: a PEM file of the CAs to trust (in place of the default bundle). `verify`: True
    checks against `ca` or the default bundle; False checks nothing (never in production);
    an `ssl.SSLContext` is used as it is (e.g. one with a client certificate loaded).
    """

    ca: Path | None = None
    verify: bool | ssl.SSLContext = True

    def __post_init__(self) -> None:
        if self.ca is not None and self.verify is not True:
            raise ValueError("give ca= or verify=, not both (an SSLContext brings its own CAs)")

    @property
    def key(self) -> Hashable:
        """Equal for settings that may share one SSL context and HTTP client."""
        if isinstance(self.verify, ssl.SSLContext):
            return self.verify
        if self.ca is not None:
            return ("ca", str(self.ca.resolve()))
        return ("verify", self.verify)


DEFAULT_TLS = TlsOptions()


def resolve_tls(
    ca: str | os.PathLike[str] | None,
    verify: bool | ssl.SSLContext | None,
    env: Mapping[str, str] | None = None,
) -> TlsOptions:
    """The TLS settings: `ca` and `verify` as given, else `CONFIGSVC_CA`, else the defaults
    (the default CA bundle, checked)."""
    env = os.environ if env is None else env
    if ca is None and verify is None and env.get(CA_ENV):
        ca = env[CA_ENV]
    return TlsOptions(
        ca=Path(ca) if ca is not None else None, verify=True if verify is None else verify
    )
