"""A live E-co Gram on a real localhost port, and Debian's Chromium driven by Playwright.

The app runs in a thread with its own event loop (Playwright's sync API must own the test's
thread), over the test database the ``settings`` fixture empties. Browser tests are skipped only
when the Chromium binary is missing *and* we are not in CI: in CI a missing browser fails.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from ecogram.app import create_app
from ecogram.settings import Settings

CHROMIUM = os.environ.get("ECOGRAM_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parent.parent / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@dataclass
class LiveServer:
    url: str
    settings: Settings


@pytest.fixture
def live_server(settings: Settings) -> Iterator[LiveServer]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    # Exports and snippets carry absolute /img URLs: make them point at this server.
    live_settings = settings.replace(public_url=url)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    state: dict[str, object] = {}

    async def start() -> None:
        runner = web.AppRunner(create_app(live_settings), access_log=None)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        state["runner"] = runner

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(start())
        except BaseException as exc:  # surfaced in the test thread below
            state["error"] = exc
            ready.set()
            return
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="live-server", daemon=True)
    thread.start()
    assert ready.wait(60), "the live server did not start"
    if "error" in state:
        raise state["error"]  # type: ignore[misc]
    try:
        yield LiveServer(url, live_settings)
    finally:
        runner = state["runner"]
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(60)  # type: ignore[attr-defined]
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


@pytest.fixture
def browser(live_server):
    # Function-scoped and after live_server: Playwright's sync API keeps an event loop running
    # in this thread while it is open, and the database fixtures need asyncio.run() first.
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"Chromium is required in CI and was not found at {CHROMIUM}")
        pytest.skip(f"no Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


class PageProblems:
    """Console errors and CSP violations seen by a page: a page that breaks its own CSP (an
    inline style or script) shows up here."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.failed: list[tuple[int, str]] = []  # responses >= 400: (status, url)

    def watch(self, page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.messages.append(f"page error: {exc}"))
        page.on("response", lambda r: r.status >= 400 and self.failed.append((r.status, r.url)))

    def _console(self, msg) -> None:
        # A failed request is listed (with its address) in self.failed; the console line
        # about it says less.
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            self.messages.append(msg.text)

    def csp(self) -> list[str]:
        return [m for m in self.messages if "Content Security Policy" in m]


@pytest.fixture
def new_page(browser):
    """``new_page(viewport, locale)`` → (page, problems); contexts are closed after the test."""
    contexts = []

    def make(viewport: dict | None = None, locale: str = "en-US"):
        context = browser.new_context(viewport=viewport or DESKTOP, locale=locale,
                                      accept_downloads=True)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(20_000)
        problems = PageProblems()
        problems.watch(page)
        return page, problems

    yield make
    for context in contexts:
        context.close()


def screenshot(page, name: str, full_page: bool = False) -> Path:
    """A PNG of what the screen shows (the whole page only when asked: they are committed)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page, animations="disabled")
    return path
