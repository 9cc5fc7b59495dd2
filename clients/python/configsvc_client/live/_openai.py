"""openai SDK clients whose every request is routed by a live `ModelEndpoints` document
(the `openai` package: `pip install 'configsvc-client[openai]'`, or `'configsvc[openai]'`)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import httpx

from configsvc_client.live._sync import LiveSyncTransport
from configsvc_client.live._transport import (
    DEFAULT_BASE_PATH,
    PLACEHOLDER_API_KEY,
    LiveTransport,
    Models,
)

if TYPE_CHECKING:
    import openai

log = logging.getLogger("configsvc_client.live")

PLACEHOLDER_BASE_URL = "http://configsvc.invalid"
"""The base URL the SDK is given: the transport replaces it with an endpoint's."""


def _openai() -> Any:
    try:
        import openai
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "openai_client() needs the openai package: "
            "pip install 'configsvc-client[openai]' (or 'configsvc[openai]')"
        ) from exc
    return openai


def _options(base_path: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    retries = kwargs.get("max_retries", 0)
    if retries:
        log.warning(
            "max_retries=%s: the openai SDK's retries multiply configsvc's (each of its "
            "tries runs the document's retries and fallbacks); 0 is recommended",
            retries,
        )
    # timeout=None: the document decides; a per-call timeout= still narrows it.
    return {
        "api_key": PLACEHOLDER_API_KEY,
        "base_url": PLACEHOLDER_BASE_URL + base_path,
        "max_retries": 0,
        "timeout": None,
        **kwargs,
    }


def openai_async_client(
    models: Models | LiveTransport,
    endpoint: str | None = None,
    *,
    base_path: str = DEFAULT_BASE_PATH,
    **kwargs: Any,
) -> openai.AsyncOpenAI:
    """An `openai.AsyncOpenAI` routed by `LiveTransport(models, endpoint)`.

    `max_retries=0` (configsvc owns retries and fallbacks) and `timeout=None` (the
    document's timeouts apply; `timeout=` per call narrows them) unless given in
    `kwargs`, which go to `AsyncOpenAI`. Pass a `LiveTransport` to choose its options.
    """
    live = (
        models
        if isinstance(models, LiveTransport)
        else LiveTransport(models, endpoint, base_path=base_path)
    )
    http_client = httpx.AsyncClient(transport=live, timeout=None)  # noqa: S113 - the document's
    client: openai.AsyncOpenAI = _openai().AsyncOpenAI(
        http_client=http_client, **_options(base_path, kwargs)
    )
    return client


def openai_client(
    models: Models | LiveSyncTransport,
    endpoint: str | None = None,
    *,
    base_path: str = DEFAULT_BASE_PATH,
    **kwargs: Any,
) -> openai.OpenAI:
    """An `openai.OpenAI` (sync) routed by `LiveSyncTransport(models, endpoint)`; as
    `openai_async_client` otherwise."""
    live = (
        models
        if isinstance(models, LiveSyncTransport)
        else LiveSyncTransport(models, endpoint, base_path=base_path)
    )
    http_client = httpx.Client(transport=live, timeout=None)  # noqa: S113 - the document's
    client: openai.OpenAI = _openai().OpenAI(http_client=http_client, **_options(base_path, kwargs))
    return client
