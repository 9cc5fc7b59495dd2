"""ServiceSettings: every knob of the service, from flags, `CONFIGSVC_*` variables or defaults."""

from __future__ import annotations

from pathlib import Path

from configsvc_schemas.wire import default_data_dir
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_KEEPALIVE_SECONDS = 15.0
DEFAULT_HISTORY_LIMIT = 1000
DEFAULT_STORE_TIMEOUT_SECONDS = 5.0
DEFAULT_REQUEST_READ_TIMEOUT_SECONDS = 30.0
MAX_BODY_BYTES = 512 * 1024
DEFAULT_ETCD_QUOTA_BYTES = 2 * 1024**3
"""The embedded etcd's space quota (etcd's own default, set explicitly so it is known)."""
DEFAULT_HISTORY_BYTES = 256 * 1024 * 1024
"""Spec bytes that history may hold in all, past the current versions."""
DEFAULT_HISTORY_BYTES_PER_DOCUMENT = 32 * 1024 * 1024
"""Spec bytes one document's history may hold, past its current version."""
DEFAULT_AUTH_FAILURES_PER_MINUTE = 20
DEFAULT_SESSION_TTL_SECONDS = 8 * 3600.0
"""A web console session lasts a working day; then the browser signs in again."""
MAX_WATCH_STREAMS = 20_000
"""Open watch streams per instance; past it, new ones get 503."""


class ServiceSettings(BaseSettings):
    """Settings of one service instance. Explicit arguments win over `CONFIGSVC_*` variables."""

    model_config = SettingsConfigDict(
        env_prefix="CONFIGSVC_", extra="ignore", hide_input_in_errors=True
    )

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    etcd: str | None = Field(
        default=None, description="etcd endpoints, comma-separated; None: the embedded default"
    )
    etcd_binary: Path | None = None
    data_dir: Path = Field(default_factory=default_data_dir)
    admin_token: str | None = Field(default=None, repr=False)
    keepalive: float = Field(default=DEFAULT_KEEPALIVE_SECONDS, gt=0)
    history_limit: int = Field(default=DEFAULT_HISTORY_LIMIT, ge=1)
    history_bytes: int = Field(
        default=DEFAULT_HISTORY_BYTES,
        ge=0,
        description="spec bytes of past versions kept in all; the oldest are trimmed first",
    )
    history_bytes_per_document: int = Field(
        default=DEFAULT_HISTORY_BYTES_PER_DOCUMENT,
        ge=0,
        description="spec bytes of past versions kept per document",
    )
    etcd_quota_bytes: int | None = Field(
        default=None,
        gt=0,
        description="etcd's --quota-backend-bytes: set on the embedded etcd (default 2 GiB), "
        "told to the service for an external one (for /metrics and the 80% warning)",
    )
    etcd_auto_defragment: bool = Field(
        default=False,
        description="defragment etcd when free pages pass half its database (set for the "
        "embedded default; an external cluster's operator decides)",
    )
    store_timeout: float = Field(
        default=DEFAULT_STORE_TIMEOUT_SECONDS,
        gt=0,
        description="seconds before a store call is given up and answered 503",
    )
    request_read_timeout: float = Field(
        default=DEFAULT_REQUEST_READ_TIMEOUT_SECONDS,
        gt=0,
        description="seconds a request may take to arrive whole (then 408, connection closed)",
    )
    secret_key_file: Path | None = Field(
        default=None,
        description="keyring that seals secret fields at rest (the embedded default "
        "generates <data-dir>/secret.key); none: secrets are stored in clear",
    )
    auth_failures_per_minute: int = Field(
        default=DEFAULT_AUTH_FAILURES_PER_MINUTE,
        ge=1,
        description="refused tokens from one address within a minute before it gets 429",
    )
    session_ttl: float = Field(
        default=DEFAULT_SESSION_TTL_SECONDS,
        gt=0,
        description="seconds a web console session lasts after sign-in",
    )
    key_prefix: str = Field(
        default="/configsvc/",
        pattern=r"^/?[A-Za-z0-9._/-]*/$",
        description="etcd key prefix of this service's data; ends with /",
    )
    tls_cert: Path | None = Field(
        default=None, description="serve HTTPS with this certificate chain (PEM), with tls_key"
    )
    tls_key: Path | None = Field(default=None, description="the private key of tls_cert (PEM)")
    etcd_ca: Path | None = Field(
        default=None,
        description="CA bundle (PEM) that etcd's certificates are checked against; "
        "None: the system's trusted roots",
    )
    etcd_cert: Path | None = Field(
        default=None, description="client certificate (PEM) shown to etcd, with etcd_key"
    )
    etcd_key: Path | None = Field(default=None, description="the private key of etcd_cert")
    etcd_user: str | None = Field(default=None, description="etcd user (etcd's own auth)")
    etcd_password: SecretStr | None = Field(default=None, repr=False)

    @model_validator(mode="after")
    def _check_pairs(self) -> ServiceSettings:
        """Options that only make sense together, or only with `--etcd`."""
        for first, second in _PAIRS:
            if (getattr(self, first) is None) != (getattr(self, second) is None):
                raise ValueError(f"{_flag(first)} and {_flag(second)} go together: give both")
        if not self.etcd:
            given = [name for name in _EXTERNAL_ETCD_ONLY if getattr(self, name) is not None]
            if given:
                verb = "applies" if len(given) == 1 else "apply"
                raise ValueError(
                    f"{', '.join(map(_flag, given))} {verb} only to an etcd given with --etcd "
                    "(the embedded etcd listens on loopback in plain text)"
                )
        return self

    def etcd_endpoints(self) -> list[str]:
        """The `--etcd` endpoints as a list (empty for the embedded default)."""
        if not self.etcd:
            return []
        return [e.strip() for e in self.etcd.split(",") if e.strip()]


_PAIRS = (("tls_cert", "tls_key"), ("etcd_cert", "etcd_key"), ("etcd_user", "etcd_password"))
_EXTERNAL_ETCD_ONLY = ("etcd_ca", "etcd_cert", "etcd_key", "etcd_user", "etcd_password")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")
