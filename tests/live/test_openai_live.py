"""The official openai SDK (async and sync, streamed and not) and LangChain's ChatOpenAI,
routed by LiveTransport through documents pushed by the real service, against the
example fake model servers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest
from configsvc_client import Binding, ConfigClient
from configsvc_client.kinds import ModelEndpoints
from configsvc_client.live import (
    LiveSyncTransport,
    LiveTimeout,
    LiveTransport,
    openai_async_client,
    openai_client,
)

from tests.live.servers import FakeLLM, ServerThread, put, stalling_llm, until

ONE_TRY = {"attempts": 1, "backoff_initial": 0, "backoff_max": 0, "jitter": False}
HI = [{"role": "user", "content": "hi"}]


async def push(api: httpx.Client, binding: Binding[Any], spec: dict[str, Any]) -> None:
    version = put(api, binding.key, "ModelEndpoints", spec)
    await until(lambda: binding.document is not None and binding.document.version >= version)


def endpoint(base_url: str, model: str, **fields: Any) -> dict[str, Any]:
    return {"base_url": base_url, "model": model, "retry": ONE_TRY, **fields}


@pytest.fixture
async def setup(
    api: httpx.Client, client: ConfigClient, fake_llm: Callable[..., FakeLLM]
) -> tuple[Binding[ModelEndpoints], dict[str, Any], FakeLLM, FakeLLM]:
    local, hosted = fake_llm("local"), fake_llm("hosted", api_key="sk-hosted")
    models = client.bind("prod/chat-models", ModelEndpoints)
    spec: dict[str, Any] = {
        "default": "local",
        "fallbacks": ["hosted"],
        "tasks": {"classify": {"timeout": {"read": 0.1}}},
        "endpoints": {
            "local": endpoint(local.base_url, "local-34b", timeout={"read": 5}),
            "hosted": endpoint(hosted.base_url, "gpt-x", api_key="sk-hosted"),
        },
    }
    await push(api, models, spec)
    return models, spec, local, hosted


def text(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


async def test_async_openai_follows_pushed_changes(
    api: httpx.Client, setup: tuple[Binding[ModelEndpoints], dict[str, Any], FakeLLM, FakeLLM]
) -> None:
    models, spec, local, hosted = setup
    llm = openai_async_client(models)
    async with llm:
        answer = await llm.chat.completions.create(model="any", messages=HI)
        assert (answer.choices[0].message.content, answer.model) == ("[local] hi", "local-34b")
        stream = await llm.chat.completions.create(model="any", messages=HI, stream=True)
        assert text([chunk async for chunk in stream]) == "[local] hi"
        assert local.stats()["last_api_key"] is None  # the SDK's placeholder is not sent

        spec["default"] = "hosted"
        await push(api, models, spec)
        answer = await llm.chat.completions.create(model="any", messages=HI)
        assert answer.choices[0].message.content == "[hosted] hi"
        assert (hosted.stats()["last_api_key"], hosted.stats()["last_model"]) == (
            "sk-hosted",
            "gpt-x",
        )


async def test_sync_openai_streamed_and_not(
    setup: tuple[Binding[ModelEndpoints], dict[str, Any], FakeLLM, FakeLLM],
) -> None:
    models, _, local, _ = setup

    def calls() -> tuple[str | None, str]:
        with openai_client(models) as llm:
            answer = llm.chat.completions.create(model="any", messages=HI)
            with llm.chat.completions.create(model="any", messages=HI, stream=True) as stream:
                streamed = text(list(stream))
        return answer.choices[0].message.content, streamed

    assert await asyncio.to_thread(calls) == ("[local] hi", "[local] hi")
    assert local.stats()["completions"] == 2


async def test_late_first_token_falls_over_to_the_fallback(
    api: httpx.Client, setup: tuple[Binding[ModelEndpoints], dict[str, Any], FakeLLM, FakeLLM]
) -> None:
    models, spec, local, hosted = setup
    local.set(latency=1)  # no byte at all for a second
    spec["endpoints"]["local"]["timeout"] = {"read": 5, "first_token": 0.2}
    await push(api, models, spec)
    async with openai_async_client(models) as llm:
        stream = await llm.chat.completions.create(model="any", messages=HI, stream=True)
        assert text([chunk async for chunk in stream]) == "[hosted] hi"
    assert hosted.stats()["completions"] == 1


async def test_stalled_stream_raises_a_clear_error(
    api: httpx.Client, setup: tuple[Binding[ModelEndpoints], dict[str, Any], FakeLLM, FakeLLM]
) -> None:
    models, spec, _, _ = setup
    stalling = ServerThread(stalling_llm("stall", stall=2)).start()
    try:
        spec["endpoints"]["local"] = endpoint(
            f"{stalling.url}/v1", "m", timeout={"read": 60, "idle": 0.2}
        )
        await push(api, models, spec)
        received: list[Any] = []
        async with openai_async_client(models) as llm:
            stream = await llm.chat.completions.create(model="any", messages=HI, stream=True)
            with pytest.raises(openai.APITimeoutError) as info:
                async for chunk in stream:
                    received.append(chunk)
        assert text(received) == "[stall]"
        cause = info.value.__cause__
        assert isinstance(cause, LiveTimeout) and cause.limit == "idle"
        assert "timeout.idle (0.2s)" in str(cause) and "after 182 bytes in 1 chunks" in str(cause)
    finally:
        stalling.stop()


async def test_per_call_timeout_narrows_the_documents(
    setup: tuple[Binding[ModelEndpoints], dict[str, Any], FakeLLM, FakeLLM],
) -> None:
    models, _, local, hosted = setup
    local.set(latency=0.5)
    hosted.set(latency=0.5)
    async with openai_async_client(models) as llm:
        answer = await llm.chat.completions.create(model="any", messages=HI)
        assert answer.choices[0].message.content == "[local] hi"
        with pytest.raises(openai.APITimeoutError):
            await llm.with_options(timeout=0.1).chat.completions.create(model="any", messages=HI)


async def test_task_class_by_header(
    setup: tuple[Binding[ModelEndpoints], dict[str, Any], FakeLLM, FakeLLM],
) -> None:
    models, _, local, _ = setup
    local.set(latency=0.3)
    async with openai_async_client(models) as llm:
        plain = await llm.chat.completions.create(model="any", messages=HI)
        classify = await llm.chat.completions.create(
            model="any", messages=HI, extra_headers={"X-Configsvc-Task": "classify"}
        )
    # classify reads for 0.1 s only: local is too slow for it, hosted answers.
    assert plain.choices[0].message.content == "[local] hi"
    assert classify.choices[0].message.content == "[hosted] hi"


async def test_the_sdks_own_retries_are_detected(
    setup: tuple[Binding[ModelEndpoints], dict[str, Any], FakeLLM, FakeLLM],
    caplog: pytest.LogCaptureFixture,
) -> None:
    models, _, local, hosted = setup
    local.set(fail_next=10, fail_status=503)
    hosted.set(fail_next=10, fail_status=503)
    llm = openai.AsyncOpenAI(
        base_url="http://configsvc.invalid/v1",
        api_key="unused",
        max_retries=2,
        http_client=httpx.AsyncClient(transport=LiveTransport(models)),
    )
    async with llm:
        with pytest.raises(openai.InternalServerError):
            await llm.chat.completions.create(model="any", messages=HI)
        # configsvc tried local and hosted; the SDK was told not to retry on top.
        assert (local.stats()["requests"], hosted.stats()["requests"]) == (1, 1)
        local.set(fail_next=0, latency=0.3)
        hosted.set(fail_next=0, latency=0.3)
        with (
            caplog.at_level(logging.WARNING, "configsvc_client.live"),
            pytest.raises(openai.APITimeoutError),
        ):
            await llm.with_options(timeout=0.1).chat.completions.create(model="any", messages=HI)
    assert sum("max_retries=0" in r.message for r in caplog.records) == 1


async def test_langchain_chat_openai(
    setup: tuple[Binding[ModelEndpoints], dict[str, Any], FakeLLM, FakeLLM],
) -> None:
    langchain_openai = pytest.importorskip("langchain_openai")
    models, _, local, _ = setup
    async_http = httpx.AsyncClient(transport=LiveTransport(models))
    sync_http = httpx.Client(transport=LiveSyncTransport(models))
    llm = langchain_openai.ChatOpenAI(
        model="any",
        base_url="http://configsvc.invalid/v1",
        api_key="unused",
        max_retries=0,
        http_async_client=async_http,
        http_client=sync_http,
    )
    try:
        assert (await llm.ainvoke("hi")).content == "[local] hi"
        streamed = [chunk.content async for chunk in llm.astream("hi")]
        assert "".join(streamed) == "[local] hi" and len(streamed) > 1
        assert (await asyncio.to_thread(llm.invoke, "hi")).content == "[local] hi"
        assert local.stats()["last_model"] == "local-34b"
    finally:
        await async_http.aclose()
        await asyncio.to_thread(sync_http.close)
