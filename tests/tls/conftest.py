"""Fixtures of the TLS tests: certificates made here, etcd with client-certificate auth."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tls.tlstools import Pki, tls_etcd

from configsvc.embedded.process import EtcdProcess


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.create(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def secure_etcd(pki: Pki, tmp_path: Path) -> Iterator[EtcdProcess]:
    """etcd serving its clients over TLS only, asking each for a client certificate
    (`--client-cert-auth`)."""
    proc = tls_etcd(pki, tmp_path / "etcd-tls")
    yield proc
    proc.stop()
