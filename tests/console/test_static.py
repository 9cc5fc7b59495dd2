"""What the service ships for the console and /docs: no inline script or style, a strict
Content-Security-Policy on every answer, local assets only, vendored files as recorded."""

from __future__ import annotations

import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from support import RunningService

from configsvc.api.console import CONTENT_SECURITY_POLICY, STATIC_ROOT

HTML_FILES = sorted(STATIC_ROOT.rglob("*.html"))
VENDORED = STATIC_ROOT / "VENDORED.md"


class InlineFinder(HTMLParser):
    """Collects inline scripts, inline styles, event-handler attributes and remote URLs."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "script":
            self._in_script = True
            if not named.get("src"):
                self.problems.append("a <script> without src")
        if tag == "style":
            self.problems.append("a <style> element")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"an event handler attribute {name}")
            if name == "style":
                self.problems.append("a style attribute")
            if name in ("src", "href") and value and re.match(r"^(https?:)?//", value):
                self.problems.append(f"a remote URL {value}")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.problems.append("script text inside <script>")


@pytest.mark.parametrize("path", HTML_FILES, ids=lambda p: str(p.relative_to(STATIC_ROOT)))
def test_pages_have_no_inline_script_or_style(path: Path) -> None:
    finder = InlineFinder()
    finder.feed(path.read_text())
    assert finder.problems == []


def test_the_console_scripts_build_no_markup_from_strings() -> None:
    """The console builds elements (dom.js h()), so no document value can become markup."""
    for script in (STATIC_ROOT / "ui" / "js").rglob("*.js"):
        text = script.read_text()
        for risky in (
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
        ):
            assert risky not in text, f"{script.name} uses {risky}"
        assert "localStorage" not in text and "sessionStorage" not in text, script.name


def test_vendored_files_are_the_recorded_releases() -> None:
    rows = re.findall(
        r"^\| `([^`]+)` \|.*sha256 `([0-9a-f]{64})`", VENDORED.read_text(), re.MULTILINE
    )
    recorded = dict(rows)
    assert len(recorded) >= 3, recorded
    for relative, digest in recorded.items():
        data = (STATIC_ROOT / relative).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, relative
    for licence in ("docs/LICENSE", "docs/NOTICE", "ui/vendor/js-yaml.LICENSE"):
        assert (STATIC_ROOT / licence).stat().st_size > 0


@pytest.mark.parametrize(
    "path",
    [
        "/ui/",
        "/ui/index.html",
        "/ui/js/main.js",
        "/ui/app.css",
        "/docs",
        "/docs/",
        "/docs/init.js",
        "/docs/swagger-ui-bundle.js",
    ],
)
def test_every_console_and_docs_answer_carries_the_policy(
    service: RunningService, path: str
) -> None:
    answer = httpx.get(f"{service.url}{path}", timeout=10)
    assert answer.status_code == 200, answer.text[:200]
    assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["referrer-policy"] == "no-referrer"
    if path.endswith(".js"):
        assert answer.headers["content-type"].startswith("text/javascript")


def test_the_policy_is_strict() -> None:
    directives = dict(part.strip().split(" ", 1) for part in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["base-uri"] == "'none'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY


def test_ui_without_a_slash_redirects_and_unknown_files_are_404(service: RunningService) -> None:
    redirect = httpx.get(f"{service.url}/ui", timeout=10)
    assert redirect.status_code == 308 and redirect.headers["location"] == "/ui/"
    missing = httpx.get(f"{service.url}/ui/nope.js", timeout=10)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    escape = httpx.get(f"{service.url}/ui/..%2f..%2fapp.py", timeout=10)
    assert escape.status_code == 404
    assert httpx.get(f"{service.url}/redoc", timeout=10).status_code == 404, (
        "ReDoc needs a CDN: off"
    )


def test_openapi_declares_the_bearer_scheme_and_docs_use_only_it(service: RunningService) -> None:
    openapi = httpx.get(f"{service.url}/openapi.json", timeout=10).json()
    assert openapi["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    init = (STATIC_ROOT / "docs" / "init.js").read_text()
    assert 'url: "/openapi.json"' in init
    assert 'request.credentials = "omit"' in init, (
        "Swagger UI must not ride on the console's cookie"
    )
    assert "persistAuthorization: false" in init
