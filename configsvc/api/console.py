"""The web console at `/ui/` and Swagger UI at `/docs`: static files shipped in the package.

Both are served with a strict Content-Security-Policy: scripts, styles and connections only
from this origin, no inline scripts or styles, no framing. Nothing is loaded from elsewhere,
so both work on a network without internet access.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from starlette.staticfiles import StaticFiles

from configsvc.asgi_types import ASGIApp, Message, Receive, Scope, Send

STATIC_ROOT = Path(__file__).resolve().parent.parent / "console"
CONSOLE_DIR = STATIC_ROOT / "ui"
DOCS_DIR = STATIC_ROOT / "docs"
CONSOLE_PATH = "/ui"
DOCS_PATH = "/docs"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "manifest-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ]
)
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    # Revalidated on every load (cheap: ETag), so an upgrade is seen without a stale mix.
    (b"cache-control", b"no-cache"),
]


class WithSecurityHeaders:
    """Pure ASGI wrapper that adds `SECURITY_HEADERS` to every answer of `app`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                own = {name for name, _ in SECURITY_HEADERS}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in own]
                message = {**message, "headers": [*kept, *SECURITY_HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install_console(app: FastAPI) -> None:
    """Serve the console under `/ui/` and Swagger UI under `/docs` (FastAPI's own docs
    routes must be off: they load Swagger UI from a CDN and use an inline script)."""
    headers = {name.decode(): value.decode() for name, value in SECURITY_HEADERS}

    @app.get(CONSOLE_PATH, include_in_schema=False)
    async def console_root() -> RedirectResponse:
        return RedirectResponse(f"{CONSOLE_PATH}/", status_code=308)

    @app.get(DOCS_PATH, include_in_schema=False)
    async def docs_page() -> FileResponse:
        return FileResponse(DOCS_DIR / "index.html", headers=headers)

    app.mount(
        CONSOLE_PATH,
        WithSecurityHeaders(StaticFiles(directory=CONSOLE_DIR, html=True)),
        name="console",
    )
    app.mount(
        DOCS_PATH, WithSecurityHeaders(StaticFiles(directory=DOCS_DIR, html=True)), name="docs"
    )
