"""A binding made after start() reports a current version that fails its model exactly as a
later change would: `binding.error`, `client.status.error` and a warning (docs/sdk.md)."""

from __future__ import annotations

import logging

import httpx
import pytest
from configsvc_client import ConfigClient
from configsvc_client.kinds import RateLimits
from configsvc_client.testing import InMemorySource
from pydantic import model_validator
from support import RunningService

from tests.sdk.helpers import FAST, limits, put, wait_until

LOGGER = "configsvc_client"


class NeedsEmbeddings(RateLimits):
    """A stricter model than the kind: this service cannot run without an `embeddings` limit."""

    @model_validator(mode="after")
    def _needs_embeddings(self) -> NeedsEmbeddings:
        if "embeddings" not in self.limits:
            raise ValueError("an 'embeddings' limit is required")
        return self


def chat_only(rps: float) -> dict[str, object]:
    return {"limits": {"chat": {"requests_per_second": rps}}}


def both(rps: float) -> dict[str, object]:
    return {
        "limits": {
            "chat": {"requests_per_second": rps},
            "embeddings": {"requests_per_second": rps},
        }
    }


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == LOGGER and r.levelno == logging.WARNING and "rejected" in r.getMessage()
    ]


def test_binding_after_start_reports_like_a_later_change(
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = InMemorySource()
    source.put("prod/limits", "RateLimits", chat_only(5))
    with (
        caplog.at_level(logging.WARNING, logger=LOGGER),
        ConfigClient.from_source(source, namespaces=["prod"], options=FAST) as client,
    ):
        plain = client.bind("prod/limits", RateLimits)
        assert client.status.error is None and warnings_of(caplog) == []

        strict = client.bind("prod/limits", NeedsEmbeddings)  # after start, on a bad version
        assert strict.value is None and plain.value is not None
        assert strict.error is not None and "v1 rejected" in strict.error
        assert "an 'embeddings' limit is required" in strict.error
        after_start_error = client.status.error
        assert after_start_error == f"invalid_document: {strict.error}"
        assert warnings_of(caplog) == [f"not applying {strict.error}"]

        # a later failing version is reported the same way (and not applied at all)
        source.put("prod/limits", "RateLimits", chat_only(6))
        assert client.status.error == after_start_error.replace("v1", "v2")
        assert warnings_of(caplog)[-1] == f"not applying {strict.error}"
        assert "v2 rejected" in (strict.error or "")
        assert plain.value is not None and plain.value.limits["chat"].requests_per_second == 5

        # a version that passes every binding clears the errors
        source.put("prod/limits", "RateLimits", both(7))
        assert client.status.error is None and strict.error is None
        assert strict.value is not None and "embeddings" in strict.value.limits


def test_binding_after_start_against_the_service(
    sdk_service: RunningService, admin: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    put(admin, "prod/limits", limits(1))
    client = ConfigClient(
        sdk_service.url, sdk_service.admin_token, namespaces=["prod"], options=FAST
    )
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        client.start()
        try:
            strict = client.bind("prod/limits", NeedsEmbeddings)
            assert strict.value is None and strict.error is not None
            assert client.status.mode == "streaming"
            assert client.status.error == f"invalid_document: {strict.error}"
            assert warnings_of(caplog) == [f"not applying {strict.error}"]
            put(admin, "prod/limits", both(2))
            wait_until(lambda: strict.value is not None, message="the good version")
            assert strict.error is None and client.status.error is None
        finally:
            client.stop()
