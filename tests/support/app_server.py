"""The app as the README starts it (`streamlit run app.py`, st.App with our routes), as a
subprocess on a free loopback port, and Debian's headless Chromium to drive it.

Every wait is bounded; the server's log is kept beside its data for a failure message.
Pages are visited at http://localhost:PORT (not 127.0.0.1): Streamlit's single sign-on
needs the browser's host to match the configured redirect URI's."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "tests" / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
START_SECONDS = 90


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_status(url: str, timeout: float = 2.0) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


@contextlib.contextmanager
def app_server(
    database_url: str, data_dir: Path, *, port: int | None = None, cwd: Path = ROOT, **environment: str
) -> Iterator[str]:
    """`streamlit run app.py` on `database_url`; yields its base URL. `cwd` may be a
    copy of the app with its own .streamlit/secrets.toml (single sign-on tests)."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / f"streamlit-{port}.log"
    env = {
        **os.environ,
        "ORDERS_DATABASE_URL": database_url,
        "ORDERS_DATA_DIR": str(data_dir),
        "ORDERS_PAYMENT_GATEWAY": "simulated",
        "ORDERS_EMBEDDED_WORKER": "0",
        "PYTHONPATH": str(ROOT),
        **environment,
    }
    log = open(log_path, "wb")  # noqa: SIM115 - the child process writes it
    # --server.address / --browser.serverAddress: loopback only, and no look-up of the
    # machine's external address at start-up.
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--server.address",
            "127.0.0.1",
            "--browser.serverAddress",
            "localhost",
            "--browser.gatherUsageStats",
            "false",
            "--server.fileWatcherType",
            "none",
        ],
        cwd=cwd,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://localhost:{port}"
    try:
        deadline = time.monotonic() + START_SECONDS
        while http_status(f"http://127.0.0.1:{port}/healthz") != 200:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the app did not start:\n" + log_path.read_text(errors="replace")[-3000:])
            time.sleep(0.25)
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
        log.close()


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser, *, width: int = 1440, height: int = 1200, timeout_ms: int = 20_000):
    """A page in a new browser context (its own cookies: one person's browser)."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(timeout_ms)
    alerts: list[str] = []
    page.on("dialog", lambda dialog: (alerts.append(dialog.message), dialog.dismiss()))
    page.alerts = alerts
    return page


# Resolves once no rerun is running and the DOM has not changed for `quietMs` (or after
# `maxMs` whatever happens), and then two frames have been painted.
_SETTLED_JS = """([quietMs, maxMs]) => new Promise((resolve) => {
    const start = performance.now();
    let changed = start;
    const observer = new MutationObserver(() => { changed = performance.now(); });
    observer.observe(document.documentElement,
        {subtree: true, childList: true, attributes: true, characterData: true});
    const check = () => {
        const now = performance.now();
        const running = document.querySelector('[data-testid="stStatusWidget"]');
        if ((!running && now - changed >= quietMs) || now - start >= maxMs) {
            observer.disconnect();
            requestAnimationFrame(() => requestAnimationFrame(() => resolve(now - start)));
        } else {
            setTimeout(check, 50);
        }
    };
    setTimeout(check, 50);
})"""


def settled(page, *, quiet_ms: int = 300, max_ms: int = 2_000) -> None:
    """Until the page has stopped changing (the last rerun has finished painting): for a
    screenshot, instead of a fixed sleep."""
    page.evaluate(_SETTLED_JS, [quiet_ms, max_ms])


def shot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    settled(page)  # let the last rerun finish painting
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page, email: str, password: str) -> None:
    """Fill the sign-in page (the server's own form at /sign-in) and submit it; the
    browser then goes on to the page it asked for."""
    page.locator("#email").wait_for()
    page.locator("#email").fill(email)
    page.locator("#password").fill(password)
    with page.expect_navigation():
        page.locator("#sign-in").click()


def first_order(db, status: str) -> str:
    """The oldest order in `status` (its number)."""
    from sqlalchemy import select

    from orders_core.schema import orders

    with db.read() as conn:
        return (
            conn.execute(select(orders.c.number).where(orders.c.status == status).order_by(orders.c.id))
            .scalars()
            .first()
        )


def heading(page, text: str):
    return page.get_by_role("heading", name=text).first


def wait_idle(page) -> None:
    """Until Streamlit's "running" indicator is gone: the last rerun has finished."""
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=30_000
    )


def choose(page, key: str, option: str) -> None:
    """Choose an option of a keyed st.selectbox by part of its label (typed to narrow
    the list); a rerun that redraws the widget mid-way is retried, three tries."""
    import re

    box = page.locator(f".st-key-{key}").get_by_role("combobox")
    for attempt in range(3):
        try:
            wait_idle(page)
            box.click(timeout=5_000)
            box.fill(option, timeout=5_000)
            page.get_by_role("option", name=re.compile(re.escape(option))).first.click(timeout=5_000)
            wait_idle(page)  # the rerun that the choice starts
            page.wait_for_function(
                "([sel, text]) => { const e = document.querySelector(sel); "
                "return e && e.value.includes(text); }",
                arg=[f".st-key-{key} input[role=combobox]", option],
                timeout=5_000,
            )
            return
        except Exception:
            if attempt == 2:
                raise
            page.keyboard.press("Escape")


def session_cookie(page) -> dict:
    return next(c for c in page.context.cookies() if c["name"] == "od_session")
