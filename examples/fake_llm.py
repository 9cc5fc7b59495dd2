"""A fake OpenAI-compatible model server, for the demo and the tests.

    python examples/fake_llm.py --port 9001 --name local --latency 2

`POST /v1/chat/completions` answers like an OpenAI-compatible server (with `"stream":
true`, as Server-Sent Events) with `[<name>] ` and the last user message. Its misbehaviour
is set, from weakest to strongest, by flag or environment variable at start, by the admin
endpoint while it runs, and by query parameters of one request:

| knob             | flag              | environment              | admin / query          |
|------------------|-------------------|--------------------------|------------------------|
| latency (s)      | `--latency`       | `FAKE_LLM_LATENCY`       | `latency`              |
| fail next N      | `--fail-next`     | `FAKE_LLM_FAIL_NEXT`     | `fail_next` (admin)    |
| failure status   | `--fail-status`   | `FAKE_LLM_FAIL_STATUS`   | `fail_status`/`status` |
| break stream     | `--break-after`   | `FAKE_LLM_BREAK_AFTER`   | `break_after`          |
| delay per chunk  | `--token-delay`   | `FAKE_LLM_TOKEN_DELAY`   | `token_delay`          |
| required api key | `--api-key`       | `FAKE_LLM_API_KEY`       | `api_key` (admin)      |

- latency: seconds before the response headers (so a client's read timeout fires first).
- fail next N: the next N chat requests answer `fail_status` (503 by default; 429 comes
  with `Retry-After: 0`). `?status=500` fails that one request.
- break stream: a streamed answer stops after that many chunks without finishing the
  chunked body, as a crashing local model server does (`incomplete chunked read`).
- api key: when set, requests need `Authorization: Bearer <key>` (else 401).

Admin: `POST /admin/behaviour` with a JSON object (or query parameters) of knobs changes
them; `GET /admin/stats` counts requests, failures served, broken streams, the distinct
client connections (to see connection reuse) and the last key presented;
`POST /admin/reset` zeroes the counters.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

DEFAULT_FAIL_STATUS = 503


@dataclass
class Behaviour:
    """How the fake misbehaves; every field may change while it runs."""

    latency: float = 0.0
    fail_next: int = 0
    fail_status: int = DEFAULT_FAIL_STATUS
    break_after: int | None = None
    token_delay: float = 0.0
    api_key: str | None = None

    @classmethod
    def from_env(cls, **flags: Any) -> Behaviour:
        """Flags given (not None) win over `FAKE_LLM_*` variables, which win over defaults."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = flags.get(f.name)
            if raw is None:
                raw = os.environ.get(f"FAKE_LLM_{f.name.upper()}")
            if raw is not None:
                values[f.name] = raw
        return cls().update(values)

    def update(self, values: dict[str, Any]) -> Behaviour:
        """Set the knobs named in `values` (strings are converted); unknown names fail."""
        converters: dict[str, Any] = {
            "latency": float,
            "fail_next": int,
            "fail_status": int,
            "break_after": lambda v: None if v in (None, "", "none") else int(v),
            "token_delay": float,
            "api_key": lambda v: v or None,
        }
        for name, value in values.items():
            if name not in converters:
                raise ValueError(f"unknown knob {name!r}")
            setattr(self, name, converters[name](value))
        return self


@dataclass
class Stats:
    """What the fake has seen since the last reset."""

    requests: int = 0
    completions: int = 0
    failures_served: int = 0
    streams_broken: int = 0
    last_api_key: str | None = None
    last_model: str | None = None
    connections: set[str] = field(default_factory=set)

    def as_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["connections"] = len(self.connections)
        return data


def _error(status: int, message: str, kind: str) -> JSONResponse:
    headers = {"Retry-After": "0"} if status == 429 else None
    return JSONResponse(
        {"error": {"message": message, "type": kind, "code": status}}, status, headers=headers
    )


class ChunkedSSE(Response):
    """Streams SSE chunks; with `break_after`, stops without ending the chunked body."""

    media_type = "text/event-stream"

    def __init__(self, chunks: list[bytes], delay: float, break_after: int | None) -> None:
        super().__init__()
        # No Content-Length: the body is chunked, so that it can break off mid-way.
        self.raw_headers = [
            (b"content-type", b"text/event-stream"),
            (b"cache-control", b"no-cache"),
        ]
        self.chunks, self.delay, self.break_after = chunks, delay, break_after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        for index, chunk in enumerate(self.chunks):
            if self.break_after is not None and index >= self.break_after:
                # Return without the final message: the server drops the connection
                # mid-body, as a crashing model server does.
                return
            if self.delay:
                await asyncio.sleep(self.delay)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def create_app(name: str = "fake", behaviour: Behaviour | None = None) -> FastAPI:
    """The fake server named `name` (it prefixes every answer)."""
    app = FastAPI(title=f"fake LLM {name}")
    app.state.behaviour = behaviour or Behaviour()
    app.state.stats = Stats()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        b: Behaviour = app.state.behaviour
        stats: Stats = app.state.stats
        stats.requests += 1
        if request.client is not None:
            stats.connections.add(f"{request.client.host}:{request.client.port}")
        query = request.query_params
        auth = request.headers.get("authorization", "")
        stats.last_api_key = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
        latency = float(query.get("latency", b.latency))
        if latency:
            await asyncio.sleep(latency)
        if b.api_key is not None and stats.last_api_key != b.api_key:
            return _error(401, "invalid api key", "invalid_request_error")
        if "status" in query:
            stats.failures_served += 1
            return _error(int(query["status"]), f"{name} failed on request", "server_error")
        if b.fail_next > 0:
            b.fail_next -= 1
            stats.failures_served += 1
            return _error(b.fail_status, f"{name} is failing", "server_error")
        body = await request.json()
        model = str(body.get("model", name))
        stats.last_model = model
        stats.completions += 1
        content = f"[{name}] {_last_user_message(body)}"
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        if body.get("stream"):
            break_after = query.get("break_after", b.break_after)
            break_after = None if break_after is None else int(break_after)
            if break_after is not None:
                stats.streams_broken += 1
            chunks = _sse_chunks(completion_id, model, content)
            return ChunkedSSE(chunks, float(query.get("token_delay", b.token_delay)), break_after)
        return JSONResponse(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": _usage(body, content),
            }
        )

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": name, "object": "model"}]}

    @app.post("/admin/behaviour")
    async def set_behaviour(request: Request) -> dict[str, Any]:
        values: dict[str, Any] = dict(request.query_params)
        raw = await request.body()
        if raw:
            values.update(json.loads(raw))
        app.state.behaviour.update(values)
        return dataclasses.asdict(app.state.behaviour)

    @app.get("/admin/stats")
    async def stats() -> dict[str, Any]:
        data: dict[str, Any] = app.state.stats.as_json()
        data["name"] = name
        return data

    @app.post("/admin/reset")
    async def reset() -> dict[str, Any]:
        app.state.stats = Stats()
        return {"reset": True}

    return app


def _last_user_message(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            return str(message.get("content", ""))
    return "hello"


def _usage(body: dict[str, Any], content: str) -> dict[str, int]:
    prompt = sum(len(str(m.get("content", "")).split()) for m in body.get("messages") or [])
    completion = len(content.split())
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _sse_chunks(completion_id: str, model: str, content: str) -> list[bytes]:
    def event(delta: dict[str, Any], finish: str | None) -> bytes:
        chunk = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {json.dumps(chunk)}\n\n".encode()

    words = content.split(" ")
    chunks = [event({"role": "assistant", "content": ""}, None)]
    chunks += [event({"content": w if i == 0 else f" {w}"}, None) for i, w in enumerate(words)]
    chunks.append(event({}, "stop"))
    chunks.append(b"data: [DONE]\n\n")
    return chunks


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fake OpenAI-compatible model server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--name", default=os.environ.get("FAKE_LLM_NAME", "fake"))
    parser.add_argument("--latency", type=float)
    parser.add_argument("--fail-next", type=int)
    parser.add_argument("--fail-status", type=int)
    parser.add_argument("--break-after", type=int)
    parser.add_argument("--token-delay", type=float)
    parser.add_argument("--api-key")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    behaviour = Behaviour.from_env(
        latency=args.latency,
        fail_next=args.fail_next,
        fail_status=args.fail_status,
        break_after=args.break_after,
        token_delay=args.token_delay,
        api_key=args.api_key,
    )
    app = create_app(args.name, behaviour)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
