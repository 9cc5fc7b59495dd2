"""Helpers of the TLS tests: a PKI, etcd with TLS on its client port, an HTTPS service."""

from __future__ import annotations

import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from support import ADMIN_TOKEN, STORE_TIMEOUT
from tls.certs import Authority, CertFiles

from configsvc.app import create_app
from configsvc.asgi_server import StreamClosingServer, make_server, tls_options
from configsvc.embedded.binary import find_etcd_binary
from configsvc.embedded.process import EtcdProcess, free_port
from configsvc.settings import ServiceSettings

LOCAL_NAMES = ("localhost", "127.0.0.1")
READY_TIMEOUT = 15.0


@dataclass(frozen=True)
class Pki:
    """One CA with certificates for the tests, and a second CA that trusts none of them."""

    ca: Authority
    server: CertFiles
    """For localhost and 127.0.0.1."""
    client: CertFiles
    """A client certificate (etcd's `--client-cert-auth`)."""
    wrong_name: CertFiles
    """A server certificate for another host name."""
    other_ca: Authority

    @classmethod
    def create(cls, directory: Path) -> Pki:
        ca = Authority.create(directory / "ca")
        return cls(
            ca=ca,
            server=ca.issue("server", hosts=LOCAL_NAMES),
            client=ca.issue("client", server=False, client=True),
            wrong_name=ca.issue("wrong-name", hosts=("elsewhere.invalid",)),
            other_ca=Authority.create(directory / "other", "other CA"),
        )

    def client_context(self, *, with_cert: bool = True) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca.cert_path)
        if with_cert:
            context.load_cert_chain(self.client.cert, self.client.key)
        return context


def tls_etcd(
    pki: Pki,
    data_dir: Path,
    *,
    server: CertFiles | None = None,
    client_cert_auth: bool = True,
    extra_args: tuple[str, ...] = (),
) -> EtcdProcess:
    """A started single-member etcd whose client port speaks only TLS."""
    cert = server or pki.server
    args = [
        "--cert-file", str(cert.cert),
        "--key-file", str(cert.key),
        "--trusted-ca-file", str(pki.ca.cert_path),
    ]  # fmt: skip
    if client_cert_auth:
        args.append("--client-cert-auth")
    probe = ssl.create_default_context(cafile=pki.ca.cert_path)
    probe.check_hostname = False  # the probe speaks to 127.0.0.1, whatever name `cert` has
    probe.load_cert_chain(pki.client.cert, pki.client.key)
    proc = EtcdProcess(
        binary=find_etcd_binary(None),
        data_dir=data_dir,
        fast_raft=True,
        log_path=data_dir.parent / f"{data_dir.name}.log",
        client_tls=probe,
        extra_args=[*args, *extra_args],
    )
    proc.start()
    return proc


@dataclass
class HttpsService:
    """A real uvicorn server with the configsvc app (HTTPS unless made with `pki=None`)."""

    url: str
    server: StreamClosingServer
    thread: threading.Thread
    verify: ssl.SSLContext | bool

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or ADMIN_TOKEN}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10, verify=self.verify)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_https_service(
    pki: Pki | None,
    etcd_url: str,
    *,
    loop: str = "auto",
    wait_for: str = "/readyz",
    **overrides: Any,
) -> HttpsService:
    """The app over HTTPS (certificate for localhost; plain HTTP with `pki=None`) against
    etcd at `etcd_url`; returns once `wait_for` answers 200."""
    port = free_port()
    tls: dict[str, Any] = {}
    if pki is not None:
        overrides.update(tls_cert=pki.server.cert, tls_key=pki.server.key)
        tls = tls_options(pki.server.cert, pki.server.key)
    settings = ServiceSettings(
        host="127.0.0.1",
        port=port,
        etcd=etcd_url,
        admin_token=ADMIN_TOKEN,
        store_timeout=overrides.pop("store_timeout", STORE_TIMEOUT),
        **overrides,
    )
    app = create_app(settings, settings.etcd_endpoints())
    server = make_server(
        app, "127.0.0.1", port, log_level="warning", lifespan="on", loop=loop, **tls
    )
    thread = threading.Thread(target=server.run, name=f"uvicorn-tls-{port}", daemon=True)
    thread.start()
    scheme = "https" if pki is not None else "http"
    verify = pki.client_context() if pki is not None else True
    service = HttpsService(f"{scheme}://localhost:{port}", server, thread, verify)
    wait_ready(service.url, verify, path=wait_for)
    return service


def wait_ready(
    url: str, verify: ssl.SSLContext | bool, timeout: float = READY_TIMEOUT, path: str = "/readyz"
) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = httpx.get(f"{url}{path}", verify=verify, timeout=1)
            if last.status_code == 200:
                return
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.05)
    raise AssertionError(f"{url}{path} did not answer 200: {last}")


def wait_until(predicate: Any, timeout: float = 10.0, message: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {message}")


def metric(api: httpx.Client, name: str) -> float:
    """The value of an unlabelled metric of `/metrics`."""
    for line in api.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no metric {name}")


ROOT_PASSWORD = "root-secret-for-tests"


async def enable_auth(url: str, users: dict[str, tuple[str, str]]) -> None:
    """Turn on etcd's auth at `url` (plain text) as `etcdctl` would: a root user with the
    root role, then each of `users` (name -> (password, key prefix)) with a role that may
    read and write that prefix alone."""
    from aetcd import rpc

    from configsvc.store.etcd_client import EtcdKV, prefix_end

    kv = EtcdKV([url], timeout=5)
    try:
        await kv.client.connect()
        auth = kv.client.auth_stub
        await auth.RoleAdd(rpc.AuthRoleAddRequest(name="root"))
        await auth.UserAdd(rpc.AuthUserAddRequest(name="root", password=ROOT_PASSWORD))
        await auth.UserGrantRole(rpc.AuthUserGrantRoleRequest(user="root", role="root"))
        for name, (password, prefix) in users.items():
            await auth.RoleAdd(rpc.AuthRoleAddRequest(name=name))
            permission = rpc.Permission(
                permType=rpc.Permission.READWRITE,
                key=prefix.encode(),
                range_end=prefix_end(prefix.encode()),
            )
            await auth.RoleGrantPermission(
                rpc.AuthRoleGrantPermissionRequest(name=name, perm=permission)
            )
            await auth.UserAdd(rpc.AuthUserAddRequest(name=name, password=password))
            await auth.UserGrantRole(rpc.AuthUserGrantRoleRequest(user=name, role=name))
        await auth.AuthEnable(rpc.AuthEnableRequest())
    finally:
        await kv.close()
