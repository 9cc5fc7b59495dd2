"""The command line over TLS: `configsvc serve --tls-cert/--tls-key` with etcd over TLS
(client certificates), then the CLI with `--ca` or `CONFIGSVC_CA`, its watch included."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from cli.clitools import Cli, LineReader, clean_env
from tls.tlstools import Pki, wait_ready

from configsvc.embedded.process import EtcdProcess, free_port

EXIT_TIMEOUT = 15.0
LIMITS_YAML = """\
namespace: prod
name: limits
kind: RateLimits
spec:
  limits:
    chat: {requests_per_second: 5}
"""


@dataclass
class Served:
    url: str
    proc: subprocess.Popen[str]
    err: LineReader


@pytest.fixture
def cli(tmp_path: pytest.TempPathFactory) -> Iterator[Cli]:
    work = tmp_path / "work"  # type: ignore[operator]
    work.mkdir()
    cli = Cli(clean_env(tmp_path), work)  # type: ignore[arg-type]
    yield cli
    for proc in cli.procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


@pytest.fixture
def served(cli: Cli, pki: Pki, secure_etcd: EtcdProcess) -> Iterator[Served]:
    """`configsvc serve` over HTTPS, its etcd over TLS with a client certificate; TLS files
    by flag and by variable alike."""
    port = free_port()
    cli.env.update(
        CONFIGSVC_ETCD_CA=str(pki.ca.cert_path),
        CONFIGSVC_ETCD_CERT=str(pki.client.cert),
        CONFIGSVC_ETCD_KEY=str(pki.client.key),
        CONFIGSVC_ADMIN_TOKEN="tls-admin-token-0123456789",
    )
    proc = cli.start(
        "serve", "--port", str(port), "--etcd", secure_etcd.client_url,
        "--tls-cert", str(pki.server.cert), "--tls-key", str(pki.server.key),
    )  # fmt: skip
    assert proc.stderr is not None
    err = LineReader(proc.stderr)
    url = f"https://localhost:{port}"
    wait_ready(url, pki.client_context(with_cert=False))
    cli.env.update(CONFIGSVC_URL=url, CONFIGSVC_TOKEN="tls-admin-token-0123456789")
    yield Served(url, proc, err)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=EXIT_TIMEOUT) == 0
    assert not any("Traceback" in line for line in err.lines), err.lines


def test_cli_over_https_with_its_ca(cli: Cli, served: Served, pki: Pki) -> None:
    served.err.wait_for("etcd over TLS, certificates checked against --etcd-ca")
    cli.write("limits.yaml", LIMITS_YAML)
    applied = cli("--ca", str(pki.ca.cert_path), "apply", "-f", "limits.yaml")
    assert applied.code == 0, applied
    cli.env["CONFIGSVC_CA"] = str(pki.ca.cert_path)
    listed = cli("list", "prod", "-o", "json")
    assert listed.code == 0, listed
    assert '"limits"' in listed.out
    watch = cli.start("watch", "prod")
    assert watch.stdout is not None
    out = LineReader(watch.stdout)
    out.wait_for("snapshot  prod  1 documents")
    cli.write("limits.yaml", LIMITS_YAML.replace("5}", "6}"))
    assert cli("apply", "-f", "limits.yaml").code == 0
    out.wait_for("put       prod/limits  version 2")
    watch.send_signal(signal.SIGINT)
    assert watch.wait(timeout=EXIT_TIMEOUT) == 0


def test_cli_refuses_a_service_it_cannot_trust(cli: Cli, served: Served, pki: Pki) -> None:
    cli("list").failed_with("cannot reach the service", "certificate verify failed")
    cli("--ca", str(pki.other_ca.cert_path), "list").failed_with("certificate verify failed")
    cli("--ca", str(pki.ca.directory / "missing.pem"), "list").failed_with(
        "cannot load the CA file", "missing.pem"
    )


def test_serve_refuses_tls_settings_that_cannot_work(cli: Cli, pki: Pki) -> None:
    cli("serve", "--tls-cert", str(pki.server.cert)).failed_with(
        "--tls-cert and --tls-key go together"
    )
    cli(
        "serve", "--tls-cert", str(pki.server.cert), "--tls-key", str(pki.client.key),
    ).failed_with("cannot load --tls-cert")  # fmt: skip
    cli("serve", "--etcd-ca", str(pki.ca.cert_path)).failed_with(
        "--etcd-ca applies only to an etcd given with --etcd"
    )
    cli(
        "serve", "--etcd", "http://127.0.0.1:1", "--etcd-ca", str(pki.ca.cert_path),
    ).failed_with("write them as https://")  # fmt: skip
