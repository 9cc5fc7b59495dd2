"""How to reach one etcd cluster: its endpoints as written, TLS material, etcd's auth.

Built once at start from the settings (`EtcdConnection.create`), so that a setting that
cannot work, or a file that cannot be read, stops the start with one line. What the
channels make of it is `etcd_channel`'s job.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import grpc

from configsvc.errors import ConfigsvcError

DEFAULT_PORT = 2379
PLAIN, SECURE = "http", "https"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One etcd endpoint as the operator wrote it."""

    host: str
    port: int
    secure: bool

    @property
    def target(self) -> str:
        """The gRPC target, which keeps the host name for TLS verification."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class EtcdTls:
    """What a secure channel checks and shows: PEM bytes, read once at start."""

    root_certificates: bytes | None = None
    """The CAs etcd's certificates are checked against; None: gRPC's own bundled roots."""
    certificate_chain: bytes | None = None
    private_key: bytes | None = field(default=None, repr=False)

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.root_certificates,
            private_key=self.private_key,
            certificate_chain=self.certificate_chain,
        )


@dataclass(frozen=True, slots=True)
class EtcdAuth:
    """etcd's own user and password (`etcdctl user add`, `auth enable`)."""

    user: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class EtcdConnection:
    """Every endpoint of one etcd cluster, and how to reach them."""

    endpoints: tuple[Endpoint, ...]
    tls: EtcdTls | None = None
    """Set exactly when the endpoints are `https://`."""
    auth: EtcdAuth | None = None

    @classmethod
    def create(
        cls,
        urls: Sequence[str],
        *,
        ca: Path | None = None,
        cert: Path | None = None,
        key: Path | None = None,
        user: str | None = None,
        password: str | None = None,
    ) -> EtcdConnection:
        """The connection to `urls` (`http://h:p`, `https://h:p`, or `h:p`).

        A URL with no scheme is `https` when a CA or client certificate is given, else
        `http`. Raises `ConfigsvcError` for mixed schemes, TLS files with `http://` URLs,
        or a file that cannot be read.
        """
        wants_tls = ca is not None or cert is not None
        endpoints = tuple(parse_endpoint(url, SECURE if wants_tls else PLAIN) for url in urls)
        if not endpoints:
            raise ConfigsvcError("no etcd endpoint given")
        schemes = {endpoint.secure for endpoint in endpoints}
        if len(schemes) > 1:
            raise ConfigsvcError("etcd endpoints mix http:// and https://: use one scheme")
        secure = schemes == {True}
        if wants_tls and not secure:
            raise ConfigsvcError(
                "--etcd-ca/--etcd-cert are given but the etcd endpoints are http://: "
                "write them as https://"
            )
        if (cert is None) != (key is None):
            raise ConfigsvcError("--etcd-cert and --etcd-key go together: give both")
        if (user is None) != (password is None):
            raise ConfigsvcError("--etcd-user and --etcd-password go together: give both")
        tls = None
        if secure:
            tls = EtcdTls(
                root_certificates=_read(ca, "--etcd-ca") if ca else system_root_certificates(),
                certificate_chain=_read(cert, "--etcd-cert") if cert else None,
                private_key=_read(key, "--etcd-key") if key else None,
            )
        auth = EtcdAuth(user, password) if user is not None and password is not None else None
        return cls(endpoints, tls, auth)

    def targets(self) -> list[str]:
        """The gRPC targets, one per channel: one per `https://` endpoint; one for all
        plain-text ones (gRPC's `ipv4:` list, which fails over between members)."""
        if self.tls is not None or len(self.endpoints) == 1:
            return [endpoint.target for endpoint in self.endpoints]
        addresses = [f"{_resolve_ipv4(e.host)}:{e.port}" for e in self.endpoints]
        return ["ipv4:" + ",".join(addresses)]


def parse_endpoint(url: str, default_scheme: str = PLAIN) -> Endpoint:
    """`http://host:port`, `https://host:port` or `host:port` (port 2379 if none)."""
    text = url.strip()
    parts = urlsplit(text if "://" in text else f"{default_scheme}://{text}")
    if parts.scheme not in (PLAIN, SECURE):
        raise ConfigsvcError(f"etcd endpoint {url!r}: use http:// or https://")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise ConfigsvcError(f"etcd endpoint {url!r}: invalid port") from None
    if not parts.hostname or parts.path not in ("", "/") or parts.query or parts.username:
        raise ConfigsvcError(f"not an etcd endpoint: {url!r} (expected scheme://host:port)")
    return Endpoint(parts.hostname, port, parts.scheme == SECURE)


def system_root_certificates() -> bytes | None:
    """PEM of the system's trusted CAs (OpenSSL's CA file, or `SSL_CERT_FILE`); None when
    there is none, and gRPC uses the roots it ships."""
    cafile = ssl.get_default_verify_paths().cafile
    if cafile is None:
        return None
    try:
        return Path(cafile).read_bytes()
    except OSError:
        return None


def _read(path: Path, flag: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigsvcError(f"cannot read {flag} {path}: {exc.strerror or exc}") from None
    if b"-----BEGIN " not in data:
        raise ConfigsvcError(f"{flag} {path} is not PEM (no -----BEGIN line)")
    return data


def _resolve_ipv4(host: str) -> str:
    try:
        ipaddress.IPv4Address(host)
        return host
    except ValueError:
        return socket.gethostbyname(host)
