"""Fixtures of the REST API tests: tokens, and snapshots that prove a refusal changed nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import httpx
import pytest

from configsvc.embedded.process import EtcdProcess
from tests.api.helpers import Unchanged


@pytest.fixture
def unchanged(etcd: EtcdProcess, api: httpx.Client) -> Callable[..., Unchanged]:
    """`unchanged("prod", ...)` snapshots the store; `.check()` asserts nothing changed."""

    def snapshot(*namespaces: str) -> Unchanged:
        return Unchanged(etcd, api, namespaces)

    return snapshot


TokenMaker = Callable[..., str]


@pytest.fixture
def make_token(api: httpx.Client) -> Iterator[TokenMaker]:
    """`make_token(name, role, namespaces, secrets=False)` -> the new token."""

    def make(
        name: str, role: str, namespaces: Sequence[str] = ("*",), secrets: bool = False
    ) -> str:
        response = api.post(
            "/v1/tokens",
            json={"name": name, "role": role, "namespaces": list(namespaces), "secrets": secrets},
        )
        assert response.status_code == 201, response.text
        token: str = response.json()["token"]
        return token

    yield make
