"""The web console in a real headless Chromium, against a real service and etcd.

Each test signs in afresh, works in namespaces of its own and keeps screenshots of what it
saw under tests/console/artifacts/. Every test also checks that the browser reported no
Content-Security-Policy violation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from console.pages import Console, parse, performance_urls
from support import RunningService

from tests.api.helpers import LOCAL_KEY, model_spec

pytestmark = pytest.mark.timeout(180)

SERVICE_LOGGERS = ("configsvc", "uvicorn")
PATH_SEPARATOR = " \N{SINGLE RIGHT-POINTING ANGLE QUOTATION MARK} "
"""How the console shows a field path (endpoints > a > timeout)."""


def make_token(
    admin: httpx.Client, name: str, role: str, namespaces: list[str], secrets: bool = False
) -> str:
    answer = admin.post(
        "/v1/tokens",
        json={"name": name, "role": role, "namespaces": namespaces, "secrets": secrets},
    )
    assert answer.status_code == 201, answer.text
    token: str = answer.json()["token"]
    return token


def seed(admin: httpx.Client, ns: str) -> None:
    """chat-models at version 2 (local read timeout 600, then 900) and limits at version 1."""
    for read, message in ((600, "first cut"), (900, "raise read timeout for the local 34B model")):
        answer = admin.put(
            f"/v1/configs/{ns}/chat-models",
            json={"kind": "ModelEndpoints", "spec": model_spec(read), "message": message},
        )
        assert answer.status_code in (200, 201), answer.text
    limits = {
        "kind": "RateLimits",
        "spec": {"limits": {"chat": {"requests_per_second": 5, "burst": 10}}},
        "message": "initial limits",
    }
    assert admin.put(f"/v1/configs/{ns}/limits", json=limits).status_code == 201


@pytest.fixture
def console(browser: Any, svc: RunningService, artifacts: Path) -> Iterator[Console]:
    browser.execute_cdp_cmd("Network.clearBrowserCookies", {})
    browser.set_window_size(1280, 800)
    page = Console(browser, svc.url, artifacts)
    page.open()
    yield page
    page.browser_log()
    assert not page.csp_violations, page.csp_violations


@pytest.fixture
def writer(admin: httpx.Client, request: pytest.FixtureRequest) -> str:
    """A writer token for the test's namespaces (`<test name>-*`), without secrets."""
    name = request.node.name.removeprefix("test_").replace("_", "-")[:40]
    return make_token(admin, f"w-{name}", "writer", ["*"])


def doc_version(admin: httpx.Client, ns: str, name: str) -> dict[str, Any]:
    answer = admin.get(f"/v1/configs/{ns}/{name}")
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def test_sign_in_keeps_the_token_out_of_urls_logs_and_scripts(
    console: Console, admin: httpx.Client, writer: str, caplog: pytest.LogCaptureFixture
) -> None:
    for logger in SERVICE_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=logger)
    seed(admin, "signin")
    console.wait_for("#token")
    console.screenshot("signin")
    assert console.js("return document.activeElement.id") == "token", (
        "focus starts on the token field"
    )
    console.sign_in(writer)
    console.wait_text(".card-list", "signin")
    console.screenshot("namespaces")

    assert writer not in console.driver.current_url
    urls = performance_urls(console)
    assert urls and not [url for url in urls if writer in url]
    assert console.js("return document.cookie") == "", "the session cookie is readable by scripts"
    assert console.js("return localStorage.length + sessionStorage.length") == 0
    assert writer not in console.js("return document.documentElement.outerHTML")
    assert writer not in console.js(
        "return document.getElementById('token') ? document.getElementById('token').value : ''"
    )
    cookies = [c for c in console.all_cookies() if c["name"] == "configsvc_session"]
    assert len(cookies) == 1, cookies
    cookie = cookies[0]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/v1"
    assert (
        cookie["secure"] is False
    )  # plain HTTP here; Secure under TLS (tests/console/test_session_api.py)
    assert writer not in cookie["value"]
    service_log = [
        r.getMessage() for r in caplog.records if r.name.split(".")[0] in SERVICE_LOGGERS
    ]
    assert not [line for line in service_log if writer in line]


def test_browse_namespaces_documents_and_a_document_with_masked_secrets(
    console: Console, admin: httpx.Client, writer: str
) -> None:
    seed(admin, "browse")
    console.sign_in(writer)
    console.wait_text(".card-list a", "browse").click()
    row = console.wait_text_of("table.docs tbody tr", "chat-models")
    assert "ModelEndpoints" in row and "2" in row and "raise read timeout" in row
    assert "limits" in console.text("table.docs")
    console.screenshot("namespace")
    console.wait_text("table.docs a", "chat-models").click()
    console.wait_text("h1", "chat-models")
    spec = console.wait_for("pre.spec").text
    assert "api_key: '****'" in spec or "api_key: ****" in spec, spec
    assert LOCAL_KEY not in console.text()
    assert "read: 900" in spec
    history = console.wait_for("ol.history").text
    assert (
        "v2" in history
        and "v1" in history
        and "first cut" in history
        and "raise read timeout" in history
    )
    assert "Secret values show as ****" in console.text()
    console.wait_text("#fleet-title", "Fleet")
    console.wait_text(".panel", "No instance reports this document yet")
    console.full_screenshot("document")


def test_an_edit_made_elsewhere_appears_live(
    console: Console, admin: httpx.Client, writer: str
) -> None:
    seed(admin, "live")
    console.sign_in(writer)
    console.go("#/ns/live")
    console.wait_text("table.docs", "chat-models")
    answer = admin.put(
        "/v1/configs/live/limits",
        json={
            "kind": "RateLimits",
            "spec": {"limits": {"chat": {"requests_per_second": 7, "burst": 10}}},
            "message": "seven per second",
        },
    )
    assert answer.status_code == 200
    console.wait_text("table.docs tr", "seven per second")
    admin.put(
        "/v1/configs/live/brand-new",
        json={"kind": "RateLimits", "spec": {"limits": {}}, "message": "a new one"},
    )
    console.wait_text("table.docs tr", "brand-new")

    console.go("#/ns/live/doc/chat-models")
    console.wait_text(".meta .version", "2")
    console.wait_text("#live-status", "Live")
    answer = admin.put(
        "/v1/configs/live/chat-models",
        json={"kind": "ModelEndpoints", "spec": model_spec(1200), "message": "made elsewhere"},
    )
    assert answer.status_code == 200
    console.wait_text(".meta .version", "3")
    console.wait_text("pre.spec", "read: 1200")
    console.wait_text("ol.history", "made elsewhere")
    console.wait_text(".banner", "Version 3 arrived")
    assert len(console.find_all("ol.history li")) == 3
    console.screenshot("live-update")


def test_edit_with_a_validation_error_then_a_good_save(
    console: Console, admin: httpx.Client, writer: str
) -> None:
    seed(admin, "edit")
    console.sign_in(writer)
    console.go("#/ns/edit/doc/chat-models/edit")
    console.wait_for("#spec-text")
    text = console.textarea("#spec-text")
    assert "read: 900" in text and "****" in text
    console.set_textarea("#spec-text", text.replace("read: 900", "read: -5"))
    console.find("#doc-message").send_keys("try a negative timeout")
    console.find("form.edit-form button[type=submit]").click()
    problem = console.wait_text_of(".problem-list li", "timeout")
    assert PATH_SEPARATOR.join(["endpoints", "local-34b", "timeout", "read"]) in problem
    bad_line = text.split("\n").index("      read: 900") + 1
    assert f"go to line {bad_line}" in problem
    assert console.find("#spec-text").get_attribute("aria-invalid") == "true"
    marked = [el.text.strip() for el in console.find_all(".gutter .bad")]
    assert marked == [str(bad_line)]
    console.js("window.scrollTo(0, 0)")
    console.full_screenshot("edit-validation-error")
    console.find(".problem-list button").click()
    selected = console.js(
        "const a = document.activeElement;"
        "return a.id + ':' + a.value.slice(a.selectionStart, a.selectionEnd)"
    )
    assert selected == "spec-text:      read: -5"
    assert doc_version(admin, "edit", "chat-models")["version"] == 2, (
        "a refused edit changed nothing"
    )

    # a YAML syntax error is shown at its line before anything is sent
    console.set_textarea("#spec-text", text.replace("read: 900", "read: [900"))
    console.find("form.edit-form button[type=submit]").click()
    console.wait_text(".problems", "Not valid YAML")

    console.set_textarea("#spec-text", text.replace("read: 900", "read: 45"))
    console.find("form.edit-form button[type=submit]").click()
    review = console.wait_text_of(".review", "Review the change")
    assert "read: 900" in review and "read: 45" in review
    console.screenshot("edit-review")
    console.wait_text(".review button", "Save version 3").click()
    console.wait_text(".meta .version", "3")
    saved = doc_version(admin, "edit", "chat-models")
    assert saved["spec"]["endpoints"]["local-34b"]["timeout"]["read"] == 45
    assert saved["message"] == "try a negative timeout"
    assert saved["spec"]["endpoints"]["local-34b"]["api_key"] == LOCAL_KEY, (
        "**** kept the stored secret"
    )
    assert saved["updated_by"].startswith("w-")


def test_edit_as_json_and_create_a_document(
    console: Console, admin: httpx.Client, writer: str
) -> None:
    seed(admin, "create")
    console.sign_in(writer)
    console.go("#/ns/create")
    console.wait_text("a.button", "New document").click()
    console.wait_for("#doc-name").send_keys("flags")
    console.js(
        "const s = document.getElementById('doc-kind'); s.value = 'RateLimits';"
        "s.dispatchEvent(new Event('change'))"
    )
    console.find("label[for=edit-format-json]").click()
    assert console.textarea("#spec-text").strip() == "{}"
    console.set_textarea(
        "#spec-text",
        '{\n  "limits": {\n    "chat": {"requests_per_second": 3, "burst": 1}\n  }\n}\n',
    )
    console.find("#doc-message").send_keys("created in the console")
    console.find("form.edit-form button[type=submit]").click()
    console.wait_text(".review button", "Create flags").click()
    console.wait_text("h1", "flags")
    created = doc_version(admin, "create", "flags")
    assert created["kind"] == "RateLimits" and created["version"] == 1
    assert created["spec"]["limits"]["chat"]["requests_per_second"] == 3


def test_a_compare_and_set_conflict_says_so_and_shows_the_other_change(
    console: Console, admin: httpx.Client, writer: str
) -> None:
    seed(admin, "cas")
    console.sign_in(writer)
    console.go("#/ns/cas/doc/chat-models/edit")
    console.wait_for("#spec-text")
    text = console.textarea("#spec-text")
    other = admin.put(
        "/v1/configs/cas/chat-models",
        json={
            "kind": "ModelEndpoints",
            "spec": model_spec(900, default="hosted"),
            "message": "their change",
        },
    )
    assert other.status_code == 200
    console.wait_text(".banner", "Version 3 was saved by admin while you were editing")
    console.set_textarea("#spec-text", text.replace("read: 900", "read: 77"))
    console.find("form.edit-form button[type=submit]").click()
    console.wait_text(".review button", "Save version 3").click()
    conflict = console.wait_text_of(".conflict", "Someone else saved first")
    assert "admin saved version 3" in conflict and "their change" in conflict
    assert "Their change (version 2 → 3)" in conflict
    assert "default: hosted" in conflict and "default: local-34b" in conflict
    console.screenshot("edit-conflict")
    assert doc_version(admin, "cas", "chat-models")["version"] == 3, (
        "the conflicting save wrote nothing"
    )
    console.wait_text(".conflict button", "Keep my edits").click()
    console.find("form.edit-form button[type=submit]").click()
    console.wait_text(".review button", "Save version 4").click()
    console.wait_text(".meta .version", "4")
    final = doc_version(admin, "cas", "chat-models")
    assert final["spec"]["endpoints"]["local-34b"]["timeout"]["read"] == 77


def test_diff_between_two_versions(console: Console, admin: httpx.Client, writer: str) -> None:
    seed(admin, "diff")
    admin.put(
        "/v1/configs/diff/chat-models",
        json={"kind": "ModelEndpoints", "spec": model_spec(30), "message": "third"},
    )
    console.sign_in(writer)
    console.go("#/ns/diff/doc/chat-models")
    console.wait_text("#compare-title", "Compare versions")
    console.js(
        "document.getElementById('diff-from').value = '1';"
        "document.getElementById('diff-to').value = '3'"
    )
    console.wait_text("#compare button", "Show diff").click()
    console.until(
        lambda: console.js("return location.hash") == "#/ns/diff/doc/chat-models/diff/1/3",
        "the diff route",
    )
    removed = console.until(
        lambda: [el.text for el in console.find_all(".diff-unified tr.del td.code")],
        "removed lines",
    )
    added = [el.text for el in console.find_all(".diff-unified tr.add td.code")]
    assert [line.strip() for line in removed] == ["removed: read: 600"] or "read: 600" in removed[
        0
    ], removed
    assert "read: 30" in added[0], added
    assert "+1 \N{MINUS SIGN}1 lines (version 1 → version 3)" in console.text(".diff-stats")
    console.find("label[for=Diff-layout-split]").click()
    console.wait_for(".diff-split")
    left = console.find(".diff-split td.del").text
    right = console.find(".diff-split td.add").text
    assert "read: 600" in left and "read: 30" in right
    console.screenshot("diff")


def test_roll_back_to_a_version_with_a_message(
    console: Console, admin: httpx.Client, writer: str
) -> None:
    seed(admin, "rollback")
    console.sign_in(writer)
    console.go("#/ns/rollback/doc/chat-models")
    console.wait_text("ol.history", "first cut")
    console.wait_for("ol.history li[data-version='1'] button").click()
    dialog = console.wait_for("dialog[open]")
    assert "Roll back chat-models to version 1" in dialog.text
    assert "read: 900" in dialog.text and "read: 600" in dialog.text
    message = console.find("#rollback-message")
    message.clear()
    message.send_keys("back to the first cut: 900 s was too long")
    console.screenshot("rollback-dialog")
    console.wait_text("dialog button", "Roll back").click()
    console.wait_text(".meta .version", "3")
    console.wait_text("ol.history li[data-version='3']", "rollback")
    history = admin.get("/v1/configs/rollback/chat-models/history").json()["items"]
    assert (
        history[0]["action"] == "rollback"
        and history[0]["message"] == "back to the first cut: 900 s was too long"
    )
    assert (
        doc_version(admin, "rollback", "chat-models")["spec"]["endpoints"]["local-34b"]["timeout"][
            "read"
        ]
        == 600
    )


def start_rollout(admin: httpx.Client, ns: str, read: float) -> dict[str, Any]:
    """A rollout of ns/chat-models (at version 2) whose first step lasts an hour."""
    answer = admin.post(
        f"/v1/configs/{ns}/chat-models/rollouts",
        json={
            "kind": "ModelEndpoints",
            "spec": model_spec(read),
            "message": f"read timeout {read}",
            "steps": [10, 100],
            "step_seconds": 3600,
            "match": {"labels": {"region": "eu"}},
            "abort_on": {"rejected": 1},
        },
    )
    assert answer.status_code == 201, answer.text
    rollout: dict[str, Any] = answer.json()
    return rollout


def rollout_dialog(console: Console, action: str, reason: str | None = None) -> Any:
    """Open the dialog of a rollout action, type a reason; answers its confirm button."""
    console.wait_for(f".rollout button[data-action={action}]").click()
    console.wait_for("dialog[open]")
    if reason is not None:
        assert console.find("label[for=rollout-reason]").text.startswith("Reason")
        console.find("#rollout-reason").send_keys(reason)
    return console.find("dialog[open] button[type=submit]")


def test_a_rollout_shown_paused_refused_when_stale_and_aborted(
    console: Console, admin: httpx.Client, writer: str
) -> None:
    seed(admin, "rollout")
    started = start_rollout(admin, "rollout", 450)
    console.sign_in(writer)
    console.go("#/ns/rollout/doc/chat-models")
    console.wait_text(".rollout .rollout-state", "running")
    panel = console.text(".rollout")
    assert "Step 1 of 2: 10 %" in panel, panel
    assert "Candidate version 3 over version 2" in panel and "read timeout 450" in panel
    assert "promotion to every instance" in panel and "region=eu" in panel
    assert "when 1 chosen instance rejects version 3" in panel
    diff = console.find(".rollout-versions a[href*='/diff/']").get_attribute("href")
    assert diff and diff.endswith("#/ns/rollout/doc/chat-models/diff/2/3"), diff
    assert [b.text for b in console.find_all(".rollout button")] == [
        "Pause",
        "Promote now",
        "Abort",
    ]
    # writes of the document answer 409 meanwhile: the page offers none
    assert console.find_all("a[href$='/edit']") == []
    assert console.find_all("ol.history button") == []

    rollout_dialog(console, "pause", "waiting for the eu canary").click()
    console.wait_text(".rollout .rollout-state", "paused")
    console.wait_text(".rollout .rollout-reason", "waiting for the eu canary")
    assert admin.get("/v1/configs/rollout/chat-models/rollouts/current").json()["state"] == (
        "paused"
    )

    # resumed elsewhere while the dialog is open: the service's 409 is shown
    confirm = rollout_dialog(console, "resume")
    assert admin.post("/v1/configs/rollout/chat-models/rollouts/current/resume").status_code == 200
    confirm.click()
    console.wait_text("dialog[open] .notice-error", "is running, not paused")
    console.wait_text("dialog[open] button", "Cancel").click()
    console.wait_text(".rollout .rollout-state", "running")

    rollout_dialog(console, "abort", "p99 latency doubled in eu").click()
    console.wait_text(".rollout .rollout-state", "aborted")
    console.wait_text(".rollout .rollout-reason", "p99 latency doubled in eu")
    assert console.find_all(".rollout button") == [], "an ended rollout has no actions"
    console.wait_text("a[href$='/edit']", "Edit")  # writes are offered again
    console.wait_text("ol.history", "aborted: p99 latency doubled in eu")
    count = console.text("section[aria-labelledby='history-title'] .panel-head .muted")
    assert count.startswith("3 versions (") and "entries), newest first" in count, count
    assert console.js("return document.activeElement.id") == "rollout-title"
    ended = admin.get("/v1/configs/rollout/chat-models/rollouts/current").json()
    assert ended["id"] == started["id"] and ended["state"] == "aborted"
    assert ended["reason"] == "p99 latency doubled in eu"
    assert doc_version(admin, "rollout", "chat-models")["version"] == 2


def test_sign_out_ends_the_session(
    console: Console, admin: httpx.Client, writer: str, svc: RunningService
) -> None:
    console.sign_in(writer)
    cookie = next(c for c in console.all_cookies() if c["name"] == "configsvc_session")
    console.sign_out()
    assert not [c for c in console.all_cookies() if c["name"] == "configsvc_session"]
    assert console.fetch("GET", "/v1/namespaces")["status"] == 401
    stolen = httpx.get(
        f"{svc.url}/v1/namespaces", cookies={"configsvc_session": cookie["value"]}, timeout=10
    )
    assert stolen.status_code == 401, "a signed-out session must not work anywhere"
    assert console.js("return document.activeElement.id") == "token"


def test_a_write_with_the_cookie_alone_is_refused(
    console: Console, admin: httpx.Client, writer: str
) -> None:
    seed(admin, "csrf")
    console.sign_in(writer)
    body = {"kind": "RateLimits", "spec": {"limits": {}}}
    refused = console.fetch("PUT", "/v1/configs/csrf/forged", body)
    assert refused["status"] == 403
    assert parse(refused["body"])["error"]["code"] == "csrf_failed"
    assert admin.get("/v1/configs/csrf/forged").status_code == 404
    session = parse(console.fetch("GET", "/v1/session")["body"])
    allowed = console.fetch(
        "PUT", "/v1/configs/csrf/forged", body, {"X-CSRF-Token": session["csrf_token"]}
    )
    assert allowed["status"] == 201, allowed


def test_a_revoked_tokens_session_ends_at_once(console: Console, admin: httpx.Client) -> None:
    seed(admin, "revoke")
    token = make_token(admin, "short-lived", "reader", ["revoke"])
    console.sign_in(token)
    console.go("#/ns/revoke/doc/chat-models")
    console.wait_text("#live-status", "Live")
    assert admin.delete("/v1/tokens/short-lived").status_code == 200
    console.wait_text(".signin", "Your session ended")
    assert console.fetch("GET", "/v1/namespaces")["status"] == 401


def test_a_reader_sees_no_write_actions(console: Console, admin: httpx.Client) -> None:
    seed(admin, "reader")
    token = make_token(admin, "just-reading", "reader", ["reader"])
    console.sign_in(token)
    start_rollout(admin, "reader", 300)
    console.go("#/ns/reader/doc/chat-models")
    console.wait_text("ol.history", "first cut")
    console.wait_text(".rollout .rollout-state", "running")
    assert "Step 1 of 2: 10 %" in console.text(".rollout")
    assert not [
        el
        for el in console.find_all("a.button, button")
        if el.text in ("Edit", "roll back to this")
    ]
    assert console.find_all(".rollout button") == [], "a reader sees the rollout, no actions"
    assert "Tokens" not in [el.text for el in console.find_all("nav a") if el.is_displayed()]


def test_kinds_and_tokens_pages(console: Console, svc: RunningService) -> None:
    console.sign_in(svc.admin_token)
    console.go("#/kinds")
    console.wait_text("table.kinds", "ModelEndpoints")
    console.wait_for("#kind-name").send_keys("FeatureFlags")
    schema = "type: object\nproperties:\n  flags:\n    type: object\n"
    console.find("#kind-schema").clear()  # a template stands there
    console.find("#kind-schema").send_keys(schema)  # YAML (JSON works too)
    console.find("#kind-message").send_keys("flags of the gateway")
    console.wait_text("form.edit-form button", "Register kind").click()
    console.wait_text("h1", "FeatureFlags")
    with httpx.Client(
        base_url=svc.url, headers={"Authorization": f"Bearer {svc.admin_token}"}
    ) as api:
        registered = api.get("/v1/schemas/FeatureFlags").json()
        assert registered["version"] == 1 and registered["builtin"] is False
    console.go("#/kinds")
    console.wait_text("table.kinds", "FeatureFlags")
    console.screenshot("kinds")
    console.wait_text("table.kinds a", "ModelEndpoints").click()
    console.wait_text("pre.code", '"endpoints"')
    assert "api_key" in console.text("main")

    console.go("#/tokens")
    console.wait_for("#token-name").send_keys("made-in-console")
    console.js("document.getElementById('token-role').value = 'writer'")
    console.find("#token-namespaces").clear()
    console.find("#token-namespaces").send_keys("prod, team-a-*")
    console.wait_text("form.edit-form button", "Create token").click()
    shown = console.wait_for("#new-token").get_attribute("value")
    assert shown.startswith("cst.made-in-console.")
    console.wait_text("table.tokens", "made-in-console")
    console.screenshot("tokens")
    with httpx.Client(base_url=svc.url, headers={"Authorization": f"Bearer {shown}"}) as made:
        assert made.get("/v1/whoami").json()["namespaces"] == ["prod", "team-a-*"]
    console.find("button[aria-label='Revoke made-in-console']").click()
    console.wait_text("dialog button", "Revoke").click()
    console.until(
        lambda: "made-in-console" not in console.text("table.tokens"),
        "the revoked token to leave the list",
    )
    assert console.find_all("#new-token") == [], "the token is shown once, then forgotten"


def test_keyboard_only(console: Console, admin: httpx.Client, writer: str) -> None:
    from selenium.webdriver.common.keys import Keys

    seed(admin, "keys")
    console.wait_for("#token").send_keys(writer + Keys.ENTER)
    console.wait_text("h1", "Namespaces")
    active = console.driver.switch_to.active_element
    for _ in range(30):
        if active.text == "keys" or "keys" in active.text.split("\n"):
            break
        active.send_keys(Keys.TAB)
        active = console.driver.switch_to.active_element
    else:
        raise AssertionError("the namespace link cannot be reached with the keyboard")
    active.send_keys(Keys.ENTER)
    console.wait_text("h1", "keys")
    assert console.js("return document.activeElement.tagName") == "H1", (
        "focus moves to the new page"
    )


def test_narrow_window(console: Console, admin: httpx.Client, writer: str) -> None:
    seed(admin, "narrow")
    console.sign_in(writer)
    console.driver.set_window_size(420, 860)
    console.go("#/ns/narrow/doc/chat-models")
    console.wait_text("ol.history", "first cut")
    overflow = console.js("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow} px wider than a narrow window"
    console.screenshot("narrow-document")


def test_live_updates_resume_after_a_dropped_connection(
    browser: Any, admin: httpx.Client, writer: str, svc: RunningService, artifacts: Path
) -> None:
    from console.proxy import CuttableProxy

    seed(admin, "resume")
    with CuttableProxy(svc.url) as proxy:
        browser.execute_cdp_cmd("Network.clearBrowserCookies", {})
        console = Console(browser, proxy.url, artifacts)
        console.sign_in(writer)
        console.go("#/ns/resume/doc/chat-models")
        console.wait_text("#live-status", "Live")
        proxy.cut()
        console.wait_text("#live-status", "Reconnecting")
        admin.put(
            "/v1/configs/resume/chat-models",
            json={
                "kind": "ModelEndpoints",
                "spec": model_spec(5),
                "message": "while you were away",
            },
        )
        time.sleep(0.5)
        assert "while you were away" not in console.text("ol.history")
        proxy.restore()
        console.wait_text("ol.history", "while you were away")
        console.wait_text("#live-status", "Live")
        console.wait_text("pre.spec", "read: 5")
        console.browser_log()


def test_swagger_ui_is_served_offline_with_a_bearer_scheme(
    browser: Any, svc: RunningService, artifacts: Path
) -> None:
    console = Console(browser, svc.url, artifacts)
    browser.get(f"{svc.url}/docs")
    console.wait_text(".swagger-ui .info", "configsvc")
    console.wait_text("button.authorize", "Authorize").click()
    console.wait_text(".auth-container", "bearer")
    console.find(".auth-container input").send_keys(svc.admin_token)
    console.find(".auth-container button.authorize").click()
    console.find("button.close-modal").click()
    console.screenshot("swagger-ui")
    urls = performance_urls(console)
    assert all(url.startswith(svc.url) for url in urls), [
        u for u in urls if not u.startswith(svc.url)
    ]
    console.browser_log()
    assert not console.csp_violations, console.csp_violations


def test_the_console_modules_work_in_the_browser(console: Console) -> None:
    """The diff (an edit script that turns one text into the other) and the field locator,
    run in the browser on generated cases."""
    result = console.driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        Promise.all([import('/ui/js/diff.js'), import('/ui/js/text.js')]).then(([d, t]) => {
          const failures = [];
          let seed = 7;
          const rand = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
          for (let i = 0; i < 500; i++) {
            const make = () => Array.from({length: rand(12)}, () => 'abc'[rand(3)]);
            const a = make(), b = make();
            const ops = d.diffLines(a, b);
            const after = ops.filter(o => o.op !== '-').map(o => o.text);
            const before = ops.filter(o => o.op !== '+').map(o => o.text);
            if (after.join() !== b.join() || before.join() !== a.join()) failures.push([a, b]);
          }
          const spec = {
            endpoints: {a: {timeout: {read: 1}}, b: {timeout: {read: 2}}},
            list: [{x: 1}, {x: 2}],
          };
          const where = {};
          for (const format of ['yaml', 'json']) {
            const text = t.toText(spec, format);
            const lines = text.split('\\n');
            const paths = [['endpoints', 'b', 'timeout', 'read'], ['list', 1, 'x']];
            where[format] = paths.map(p => lines[t.locate(text, p, format) - 1].trim());
          }
          done({failures, where});
        }).catch(e => done({error: String(e)}));
        """
    )
    assert "error" not in result, result
    assert result["failures"] == []
    assert result["where"] == {"yaml": ["read: 2", "- x: 2"], "json": ['"read": 2', '"x": 2']}
