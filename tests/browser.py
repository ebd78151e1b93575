"""Headless Chromium for page tests, driven over the DevTools protocol on a pipe (no extra package).

`--remote-debugging-pipe` makes Chromium read DevTools commands from fd 3 and write replies and events
to fd 4, each a JSON message ended by NUL. One `Page` load gives the DOM after scripts ran, every console
error, uncaught exception and failed load (Log domain: CSP violations, 404s), and a PNG screenshot.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--mute-audio",
]


def chromium_path() -> str:
    """The browser binary ($TUSK_CHROMIUM, else chromium on PATH), or fail under CI=true / skip elsewhere."""
    configured = os.environ.get("TUSK_CHROMIUM")
    if configured:
        found = configured if os.access(configured, os.X_OK) else None
        message = f"TUSK_CHROMIUM={configured} is not an executable"
    else:
        found = shutil.which("chromium") or shutil.which("chromium-browser")
        message = "chromium is not installed (apt-get install chromium, or set TUSK_CHROMIUM)"
    if not found:
        if IN_CI:
            pytest.fail(message + " (CI=true: a missing browser is a failure, not a skip)", pytrace=False)
        pytest.skip(message)
    return found


@dataclass
class PageResult:
    dom: str
    console_errors: list[str] = field(default_factory=list)
    screenshot: Path | None = None


class Tab:
    def __init__(self, browser: Browser, target: str, session: str) -> None:
        self.browser, self.target, self.session = browser, target, session

    def dom(self) -> str:
        return str(self.browser.evaluate("document.documentElement.outerHTML", self.session))

    def screenshot(self, name: str) -> Path:
        data = self.browser.call(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=self.session
        )
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / name
        path.write_bytes(base64.b64decode(data["data"]))
        return path

    def console_errors(self) -> list[str]:
        return self.browser.console_errors(self.session)

    def close(self) -> None:
        self.browser.call("Target.closeTarget", {"targetId": self.target})


class Browser:
    """One Chromium process; `load()` opens a page in a fresh tab."""

    def __init__(self, binary: str) -> None:
        self._profile = tempfile.TemporaryDirectory(prefix="tusk-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # The child must see our pipe ends as fds 3 and 4; move them above 4 first so dup2 cannot clobber.
        high_r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
        high_w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
        os.close(to_browser_r)
        os.close(from_browser_w)

        def child_fds() -> None:
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        self._process = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={self._profile.name}", "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(3, 4, high_r, high_w),
            preexec_fn=child_fds,
        )
        os.close(high_r)
        os.close(high_w)
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ protocol

    def _send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        return self._next_id

    def _read(self, deadline: float) -> dict[str, Any] | None:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if not ready:
                return None
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe (did it crash?)")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None, timeout: float = 20.0
    ) -> dict[str, Any]:
        wanted = self._send(method, params, session)
        deadline = time.monotonic() + timeout
        while True:
            message = self._read(deadline)
            if message is None:
                raise TimeoutError(f"no reply to {method} within {timeout} s")
            if message.get("id") == wanted:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self._events.append(message)

    def wait_for(self, method: str, session: str, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        for index, event in enumerate(self._events):
            if event["method"] == method and event.get("sessionId") == session:
                return self._events.pop(index)
        while True:
            message = self._read(deadline)
            if message is None:
                raise TimeoutError(f"no {method} within {timeout} s")
            if message.get("method") == method and message.get("sessionId") == session:
                return message
            if "method" in message:
                self._events.append(message)

    def pump(self, seconds: float) -> None:
        """Collect events for a while (scripts, timers and fetches keep running meanwhile)."""
        deadline = time.monotonic() + seconds
        while (message := self._read(deadline)) is not None:
            if "method" in message:
                self._events.append(message)

    # ------------------------------------------------------------------ pages

    def open(self, url: str, *, settle: float = 0.3, width: int = 1280, height: int = 900) -> Tab:
        """Open `url` in a new tab and wait for its `load` event plus `settle` seconds."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page.enable", "Runtime.enable", "Log.enable"):
            self.call(domain, session=session)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        self.call("Page.navigate", {"url": url}, session=session)
        self.wait_for("Page.loadEventFired", session)
        self.pump(settle)
        return Tab(self, target, session)

    def load(self, url: str, *, screenshot: str | None = None, settle: float = 0.3) -> PageResult:
        """Open `url`; return its DOM after scripts ran, its console errors and (optionally) a screenshot."""
        tab = self.open(url, settle=settle)
        try:
            dom = tab.dom()
            shot = tab.screenshot(screenshot) if screenshot else None
            return PageResult(dom, tab.console_errors(), shot)
        finally:
            tab.close()

    def evaluate(self, expression: str, session: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session)
        return result["result"].get("value")

    def console_errors(self, session: str) -> list[str]:
        errors = []
        for event in self._events:
            if event.get("sessionId") != session:
                continue
            params = event.get("params", {})
            if event["method"] == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                errors.append("console: " + " ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
            elif event["method"] == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                errors.append("exception: " + str(details.get("exception", {}).get("description", details.get("text"))))
            elif event["method"] == "Log.entryAdded" and params["entry"]["level"] == "error":
                entry = params["entry"]
                errors.append(f"log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}".rstrip())
        return errors

    def close(self) -> None:
        try:
            self._send("Browser.close")
            self._process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self._process.kill()
            self._process.wait()
        finally:
            os.close(self._to_browser)
            os.close(self._from_browser)
            self._profile.cleanup()


class _WidgetValues(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.current: str | None = None
        self.values: dict[str, list[tuple[Any, Any]]] = {}
        self.status: dict[str, str] = {}
        self.text: dict[str, list[str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "article" and found.get("data-widget"):
            self.current = found["data-widget"]
            self.values[self.current] = []
            self.status[self.current] = found.get("data-status") or ""
            self.text[self.current] = []
        elif self.current and found.get("data-value") is not None:
            label = found.get("data-label")
            self.values[self.current].append(
                (json.loads(label) if label is not None else None, json.loads(found["data-value"] or "null"))
            )

    def handle_endtag(self, tag: str) -> None:
        if tag == "article":
            self.current = None

    def handle_data(self, data: str) -> None:
        if self.current:
            self.text[self.current].append(data)


def widget_values(dom: str) -> tuple[dict[str, list[tuple[Any, Any]]], dict[str, str], dict[str, str]]:
    """Per widget (`panel.widget`): [(data-label, data-value)] in page order, its status and its text."""
    parser = _WidgetValues()
    parser.feed(dom)
    return parser.values, parser.status, {k: " ".join("".join(v).split()) for k, v in parser.text.items()}
