"""What every console browser test shares: Debian's headless Chromium driven by Playwright, the
real app served by uvicorn on a free loopback port, the editor who signs in, and the few things a
staff member does. The fixtures are registered by tests/e2e/conftest.py.

Needs Debian's chromium at /usr/bin/chromium (`scripts/install-browser`) and the `playwright`
package, whose own browser downloads are never used. Without them these tests are skipped, or
fail when the CI environment variable is set."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn

from gateway.data import auth
from gateway.app import create_app
from tests.conftest import NOW

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # reported by the `chromium` fixture: skipped, or failed under CI
    expect = sync_playwright = None


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}

PASSWORD = "correct horse battery"
EDITOR = "editor@sugu.test"

# Long enough for two SMS segments (188 GSM-7 characters once ɛ ɔ are written è ò), with the three
# letters the USSD screen must fold to plain ASCII: ɛ→e, ɔ→o, ɲ→ny.
BM_LONG = (
    "Sugu - sɔngɔ kura ni laadilikan ɲumanw sɛnɛkɛlaw ye: tamati, jababa, shu ani foronto sɔngɔw "
    "bɛ sɔrɔ yan don o don, sugu bɛɛ la. Aw bɛ se ka SMS kunnafoni fana sɔrɔ ni aw ye aw tɔgɔ sɛbɛn."
)
BM_LONG_ON_USSD = "Sugu - songo kura ni laadilikan nyumanw senekelaw ye"
BM_LONG_IN_SMS = "Sugu - sòngò kura ni laadilikan nyumanw sènèkèlaw ye"


# -- the browser and the server ------------------------------------------------------------------------


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: the browser tests must run there)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium():
    """One headless Chromium for the run: Debian's, never one downloaded by Playwright."""
    if sync_playwright is None:
        _unavailable("the playwright package is not installed: pip install -e '.[dev]'")
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"{CHROMIUM} is missing: run scripts/install-browser (installs Debian's chromium package)")
    expect.set_options(timeout=10_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@contextmanager
def serve(app):
    """The app under uvicorn in a daemon thread, on a free loopback port; yields its base URL.

    Like gateway.aggregators.fake_at.serve_in_thread, except that the app's lifespan runs: that is
    where create_app() opens the database (serve_in_thread turns the lifespan off)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # bound before serving: no race for the port
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = uvicorn.Config(
        app, log_level="warning", log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"console-{url}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError(f"the console on {url} stopped during startup (see the captured log)")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the console on {url} did not start within 15 s")
            time.sleep(0.01)
        yield url
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def console(settings):
    with serve(create_app(settings, clock=lambda: NOW)) as url:
        yield url


@pytest.fixture
def staff(db):
    with db.unit_of_work() as session:
        auth.create_staff(session, email=EDITOR, password=PASSWORD, role="editor")


class Problems:
    """What a page did wrong besides the test's own assertions: server errors, script errors."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def watch(self, page) -> None:
        page.on("pageerror", lambda exc: self.seen.append(f"script error on {page.url}: {exc}"))
        page.on(
            "response",
            lambda r: self.seen.append(f"HTTP {r.status} from {r.request.method} {r.url}") if r.status >= 500 else None,
        )


@pytest.fixture
def problems():
    found = Problems()
    yield found
    assert not found.seen, "\n".join(found.seen)


@pytest.fixture
def new_page(chromium, console, problems):
    """Opens pages in fresh browser contexts (own cookies) on this test's server."""
    contexts = []

    def make(viewport: dict = DESKTOP, storage_state=None):
        phone = viewport["width"] < 600
        context = chromium.new_context(
            base_url=console, viewport=viewport, is_mobile=phone, has_touch=phone, storage_state=storage_state
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        problems.watch(page)
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page):
    return new_page()


# -- what a staff member does ---------------------------------------------------------------------------


def sign_in(page, email: str = EDITOR, password: str = PASSWORD) -> None:
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def signed_in(page, email: str = EDITOR) -> None:
    page.goto("/admin/login")
    sign_in(page, email)
    expect(page.locator("header .who")).to_have_text(f"{email} (editor)")


def go_to(page, label: str) -> None:
    """Click a section of the navigation, as staff do: on a phone it is folded behind Menu."""
    # Decide only once the stylesheet has applied: before it, the Menu button shows at every
    # width, and clicking it then waits for a button that CSS hides on a laptop (a CI flake).
    page.wait_for_load_state("load")
    menu = page.locator("header .menu-button")
    nav_link = page.locator("header nav").get_by_role("link", name=label, exact=True)
    if menu.is_visible() and not nav_link.is_visible():
        menu.click()
    nav_link.click()


def open_section(page, label: str) -> None:
    go_to(page, label)
    expect(page.get_by_role("heading", level=1)).to_have_text(label)


def choice_for(screen: str, label: str) -> str:
    """The number of the option `label` on a USSD screen ("8. Koutiala" -> "8"). Read it with
    text_content(): inner_text() follows CSS, and collapses the lines if the stylesheet of the
    freshly loaded page has not applied yet."""
    found = re.search(rf"^(\d+)\. {re.escape(label)}$", screen, re.MULTILINE)
    assert found, f"no option {label!r} on the screen:\n{screen}"
    return found.group(1)


def answer(page, text: str) -> None:
    page.locator("#ussd-input").fill(text)
    page.get_by_role("button", name="Send", exact=True).click()


def screenshot(page, backend, name: str) -> Path:
    folder = SCREENSHOTS / backend.name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{page.viewport_size['width']}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture(scope="module")
def shots(tmp_path_factory, request):
    """A folder for this test module's screenshots (printed with -s), to look at after a run."""
    folder = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_"))
    print(f"\nscreenshots in {folder}")
    return folder


def fits_the_width(page) -> bool:
    """Nothing makes the page scroll sideways (tables scroll inside themselves)."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
