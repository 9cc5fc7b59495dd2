"""Driving the console in a real browser: sign in, go to pages, wait, read, screenshot."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

WAIT_SECONDS = 20.0
"""Generous: the machine is shared; a wait ends as soon as its condition holds."""

T = TypeVar("T")


@dataclass
class Console:
    driver: Any
    url: str
    artifacts: Path
    csp_violations: list[str] = field(default_factory=list)

    # ---- navigation ----------------------------------------------------------------------

    def open(self, hash_: str = "#/") -> None:
        """Load the console afresh (a new document: its state and streams start over)."""
        self.driver.get("about:blank")
        self.driver.get(f"{self.url}/ui/{hash_}")

    def go(self, hash_: str) -> None:
        """Navigate inside the page (no reload), as a link would."""
        self.driver.execute_script("location.hash = arguments[0]", hash_)

    def sign_in(self, token: str) -> None:
        self.open()
        field = self.wait_for("#token")
        field.send_keys(token)
        self.find("form.signin button[type=submit]").click()
        self.wait_text("h1", "Namespaces")

    def sign_out(self) -> None:
        self.find("#sign-out").click()
        self.wait_text(".signin", "You signed out")

    # ---- finding and waiting ---------------------------------------------------------------

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list[WebElement]:
        return list(self.driver.find_elements(By.CSS_SELECTOR, css))

    def until(
        self, condition: Callable[[], T | None], what: str, timeout: float = WAIT_SECONDS
    ) -> T:
        """Wait until `condition()` is truthy; return it. Fails saying `what` was awaited."""

        def check(_driver: Any) -> T | None:
            try:
                return condition()
            except StaleElementReferenceException:
                return None

        try:
            result: T = WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(check)
        except TimeoutException:
            self.screenshot("timeout")
            raise AssertionError(
                f"timed out waiting for {what}; page says: {self.text()[:800]}"
            ) from None
        return result

    def wait_for(self, css: str) -> WebElement:
        return self.until(lambda: next(iter(self.find_all(css)), None), f"{css}")

    def wait_text(self, css: str, text: str) -> WebElement:
        def found() -> WebElement | None:
            return next((el for el in self.find_all(css) if text in el.text), None)

        return self.until(found, f"{css} containing {text!r}")

    def wait_text_of(self, css: str, text: str) -> str:
        """The text of the first `css` element that contains `text`, once there is one
        (read inside the wait, so a re-rendered element is never stale)."""

        def found() -> str | None:
            return next((el.text for el in self.find_all(css) if text in el.text), None)

        return self.until(found, f"{css} containing {text!r}")

    def text(self, css: str = "body") -> str:
        elements = self.find_all(css)
        return elements[0].text if elements else ""

    def set_textarea(self, css: str, value: str) -> None:
        """Replace a textarea's text as typing would (the page sees an input event)."""
        self.driver.execute_script(
            "const el = document.querySelector(arguments[0]); el.value = arguments[1];"
            "el.dispatchEvent(new Event('input', {bubbles: true}));",
            css,
            value,
        )

    def textarea(self, css: str) -> str:
        value: str = self.driver.execute_script(
            "return document.querySelector(arguments[0]).value", css
        )
        return value

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def fetch(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """A fetch() made by the page itself (same origin, the page's cookie)."""
        script = """
            const [method, path, body, headers, done] = arguments;
            const init = {method, headers: {...headers}, credentials: 'same-origin'};
            if (body !== null) {
              init.body = JSON.stringify(body);
              init.headers['Content-Type'] = 'application/json';
            }
            fetch(path, init).then(async (r) => done({status: r.status, body: await r.text()}))
              .catch((e) => done({status: 0, body: String(e)}));
        """
        result: dict[str, Any] = self.driver.execute_async_script(
            script, method, path, body, headers or {}
        )
        return result

    # ---- cookies, logs, screenshots ----------------------------------------------------------

    def all_cookies(self) -> list[dict[str, Any]]:
        """Every cookie of the browser (get_cookies only sees those of the page's path)."""
        cookies: list[dict[str, Any]] = self.driver.execute_cdp_cmd("Network.getAllCookies", {})[
            "cookies"
        ]
        return cookies

    def browser_log(self) -> list[str]:
        messages = [entry["message"] for entry in self.driver.get_log("browser")]
        self.csp_violations += [m for m in messages if "Content Security Policy" in m]
        return messages

    def screenshot(self, name: str) -> Path:
        path = self.artifacts / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def full_screenshot(self, name: str, width: int = 1280) -> Path:
        """The whole page, as tall as it is (for the docs)."""
        height = self.js("return document.documentElement.scrollHeight")
        size = self.driver.get_window_size()
        self.driver.set_window_size(width, max(800, int(height) + 90))
        time.sleep(0.2)
        path = self.screenshot(name)
        self.driver.set_window_size(size["width"], size["height"])
        return path


def performance_urls(console: Console) -> list[str]:
    """Every URL the page loaded or called (navigation, scripts, fetches, streams)."""
    entries = console.js("return performance.getEntries().map(e => e.name)")
    return [str(name) for name in entries if "://" in str(name)]


def parse(body: str) -> Any:
    return json.loads(body) if body else None
