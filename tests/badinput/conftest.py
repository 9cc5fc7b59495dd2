"""Fixtures of the bad-input suite: a seeded service and a guard that proves refusals wrote
nothing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from badinput.badtools import (
    RawResponse,
    StoreProbe,
    assert_error_shape,
    models_spec,
    rate_spec,
    raw_request,
)
from support import RunningService

from configsvc.embedded.process import EtcdProcess


@dataclass
class Refusals:
    """The service with prod/chat-models (api keys hold MARKER) and prod/limits (2 versions).

    `refused(response)` asserts the contract's error shape and that etcd's revision has not
    moved since the last `rebase()`; `unchanged()` compares every stored key.
    """

    service: RunningService
    api: httpx.Client
    probe: StoreProbe
    revision: int = 0
    state: dict[str, tuple[str, int]] = field(default_factory=dict)

    def rebase(self) -> None:
        self.revision = self.probe.revision()
        self.state = self.probe.state()

    def refused(
        self, response: httpx.Response | RawResponse, status: int | None = None, what: Any = None
    ) -> str:
        """Assert a refusal in the contract's shape (of `status`) that wrote nothing."""
        try:
            code = assert_error_shape(response, status)
        except AssertionError as exc:
            raise AssertionError(f"{what!r}: {exc}") from None
        moved = self.probe.revision()
        assert moved == self.revision, (what, self.probe.changed_since(self.revision))
        return code

    def raw(self, data: bytes, *, timeout: float = 10.0) -> RawResponse:
        return raw_request(self.service.url, data, timeout=timeout)

    def unchanged(self) -> None:
        assert self.probe.state() == self.state, "a refused request changed the store"


@pytest.fixture
def refusals(service: RunningService, etcd: EtcdProcess) -> Iterator[Refusals]:
    probe = StoreProbe(etcd)
    with service.client() as api:
        for name, body in (
            ("chat-models", {"kind": "ModelEndpoints", "spec": models_spec()}),
            ("limits", {"kind": "RateLimits", "spec": rate_spec(1)}),
            ("limits", {"kind": "RateLimits", "spec": rate_spec(2)}),
        ):
            answer = api.put(f"/v1/configs/prod/{name}", json=body)
            assert answer.status_code in (200, 201), answer.text
        guard = Refusals(service, api, probe)
        guard.rebase()
        yield guard
    probe.close()
