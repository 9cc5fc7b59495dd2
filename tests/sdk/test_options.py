"""ClientOptions, URL and token resolution, and the backoff schedule."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from configsvc_client import ClientOptions
from configsvc_client._options import resolve_token, resolve_urls
from configsvc_schemas.backoff import Backoff


def test_defaults_match_the_contract() -> None:
    options = ClientOptions()
    assert options.start_timeout == 10
    assert options.poll_interval == 10
    assert (options.backoff_initial, options.backoff_max) == (0.5, 30)
    assert options.backoff_reset_after == 60
    assert options.server_keepalive == 15
    assert options.silence_timeout == 30


def test_options_are_immutable_and_checked() -> None:
    options = ClientOptions()
    with pytest.raises(AttributeError):
        options.poll_interval = 1  # type: ignore[misc]
    with pytest.raises(ValueError, match="poll_interval"):
        ClientOptions(poll_interval=0)
    with pytest.raises(ValueError, match="backoff_max"):
        ClientOptions(backoff_initial=2, backoff_max=1)
    assert options.replace(server_keepalive=0.1).silence_timeout == pytest.approx(0.2)


def test_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONFIGSVC_URL", raising=False)
    assert resolve_urls(None) == ("http://127.0.0.1:8080",)
    monkeypatch.setenv("CONFIGSVC_URL", "http://a:1/, http://b:2")
    assert resolve_urls(None) == ("http://a:1", "http://b:2")
    assert resolve_urls(["https://c"]) == ("https://c",)
    with pytest.raises(ValueError):
        resolve_urls("ftp://x")


def test_token_argument_then_env_then_admin_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CONFIGSVC_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("CONFIGSVC_TOKEN", raising=False)
    assert resolve_token(None) is None
    (tmp_path / "admin.token").write_text("from-file\n")
    assert resolve_token(None) == "from-file"
    monkeypatch.setenv("CONFIGSVC_TOKEN", "from-env")
    assert resolve_token(None) == "from-env"
    assert resolve_token("explicit") == "explicit"


class _Upper(random.Random):
    """Always the upper bound, to see the schedule itself."""

    def uniform(self, a: float, b: float) -> float:
        return b


def test_backoff_doubles_to_the_cap_with_full_jitter() -> None:
    now = [0.0]
    backoff = Backoff(0.5, 4.0, 60.0, rng=_Upper(), clock=lambda: now[0])
    assert [backoff.next_delay() for _ in range(6)] == [0.5, 1, 2, 4, 4, 4]
    jittered = Backoff(0.5, 30.0, 60.0, rng=random.Random(1), clock=lambda: now[0])
    first = jittered.next_delay()
    assert 0 <= first <= 0.5  # the first retry is jittered too


def test_backoff_resets_after_a_healthy_connection() -> None:
    now = [0.0]
    backoff = Backoff(0.5, 30.0, 60.0, rng=_Upper(), clock=lambda: now[0])
    for _ in range(4):
        backoff.next_delay()
    backoff.connected()
    now[0] += 10  # a short-lived connection does not reset
    assert backoff.next_delay() == 8
    backoff.connected()
    now[0] += 61
    assert backoff.next_delay() == 0.5
