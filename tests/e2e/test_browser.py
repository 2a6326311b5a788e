"""The dashboard in a real browser: `streamlit run app.py` as a subprocess on a seeded SQLite
file with the embedded job worker on, driven by Debian's headless Chromium through
Playwright (no browser download).

- ops signs in, ticks two Paid orders in the grid (a canvas: the checkbox cells are
  clicked by position), runs Fulfill, sees the job notification, follows it to the
  Jobs page and sees the job complete, then sees both orders Fulfilled.
- a customer name and a staff note of `<img src=x onerror=alert(1)>` show as text.

Assertions are on the app's own output (the "2 selected: …" line, headings, badges),
never on the grid's hidden accessibility table. A screenshot of each page visited
goes to tests/artifacts/screenshots/. Every wait is bounded."""

from __future__ import annotations

import contextlib
import re
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select, update

from orders_core import db as orders_db
from orders_core import demo
from orders_core.schema import orders
from tests.support.app_server import CHROMIUM, CHROMIUM_ARGS, app_server, settled
from tests.support.app_server import sign_in as sign_in_as

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "tests" / "artifacts" / "screenshots"
HOSTILE = "<img src=x onerror=alert(1)>"
PASSWORD = demo.DEMO_PASSWORD
WAIT_MS = 15_000
HEADER_PX = 35  # st.data_editor: header and row height (default row_height)
ROW_PX = 35
SELECT_COLUMN_PX = 70  # pages/orders_page.py GRID_COLUMNS["Select"]

if not Path(CHROMIUM).exists():  # pragma: no cover - scripts/test.sh installs it
    pytest.skip("Debian's Chromium (/usr/bin/chromium) is not installed", allow_module_level=True)
from playwright import sync_api  # noqa: E402


# -- the server ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def site(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory):
    """(base URL, database file, the order with the hostile customer name)."""
    data_dir = tmp_path_factory.mktemp("browser-data")
    path = data_dir / "orders.db"
    shutil.copyfile(sqlite_template, path)
    engine = orders_db.create_database_engine(f"sqlite:///{path}")
    try:
        db = orders_db.Database(engine)
        demo.seed(db, orders=60, random_seed=60)
        with db.write() as conn:
            hostile = (
                conn.execute(
                    select(orders.c.number).where(orders.c.status == "fulfilled").order_by(orders.c.id)
                )
                .scalars()
                .first()
            )
            conn.execute(update(orders).where(orders.c.number == hostile).values(customer_name=HOSTILE))
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()
    with app_server(f"sqlite:///{path}", data_dir, ORDERS_EMBEDDED_WORKER="1") as base:
        yield base, path, hostile


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 1400})
    tab = context.new_page()
    tab.set_default_timeout(WAIT_MS)
    alerts: list[str] = []
    tab.on("dialog", lambda dialog: (alerts.append(dialog.message), dialog.dismiss()))
    tab.alerts = alerts
    try:
        yield tab
    finally:
        context.close()


@contextlib.contextmanager
def screenshot_on_failure(page, name: str):
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            shot(page, f"failed_{name}")
        raise


# -- helpers ---------------------------------------------------------------------------------------
def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    settled(page)  # let the last rerun finish painting
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page, email: str) -> None:
    """The sign-in page (a signed-out browser is sent there from any staff URL)."""
    sign_in_as(page, email, PASSWORD)


def app_text(page) -> list[str]:
    return page.locator("[data-testid=stText]").all_inner_texts()


def wait_for_text(page, text: str) -> None:
    page.locator("[data-testid=stText]").filter(has_text=text).first.wait_for()


def tick_row(page, row: int) -> None:
    """Click the Select checkbox of grid row `row` (0-based): the grid is a canvas."""
    canvas = page.locator("[class*='st-key-orders_grid_'] canvas").first
    canvas.wait_for(state="visible")
    box = canvas.bounding_box()
    page.mouse.click(box["x"] + SELECT_COLUMN_PX / 2, box["y"] + HEADER_PX + ROW_PX * row + ROW_PX / 2)


def paid_numbers_newest_first(path: Path) -> list[str]:
    engine = orders_db.create_database_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            return list(
                conn.execute(
                    select(orders.c.number)
                    .where(orders.c.status == "paid")
                    .order_by(orders.c.created_at.desc(), orders.c.id.desc())
                ).scalars()
            )
    finally:
        engine.dispose()


def open_order_in_app(page, number: str) -> None:
    """From the Orders page: search for the order, pick it, Open (same browser session)."""
    page.get_by_role("link", name="Orders").first.click()
    search = page.locator(".st-key-orders_filter_q input")
    search.fill(number)
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url(re.compile(rf"q={number}"))
    picker = page.locator(".st-key-orders_open_number")
    picker.click()
    page.get_by_role("option", name=re.compile(number)).click()
    page.locator(".st-key-orders_open_button button").click()
    page.get_by_role("heading", name=f"Order {number}").wait_for()


def badge(page, label: str, within: str = "body"):
    """st.badge elements reading `label` (after their Material icon's ligature name)."""
    return page.locator(f"{within} .stMarkdownBadge").filter(has_text=re.compile(rf"(^|\s){label}$"))


def assert_status(page, number: str, label: str) -> None:
    page.get_by_role("heading", name=f"Order {number}").wait_for()
    badge(page, label, within=".st-key-order_header").wait_for()


# -- the tests -------------------------------------------------------------------------------------
def test_fulfil_two_paid_orders_through_a_job(site, page):
    with screenshot_on_failure(page, "fulfil"):
        fulfil_two_paid_orders(site, page)


def test_hostile_name_and_note_are_shown_as_literal_text(site, page):
    with screenshot_on_failure(page, "hostile"):
        hostile_text_is_literal(site, page)


def fulfil_two_paid_orders(site, page) -> None:
    base, path, _ = site
    paid = paid_numbers_newest_first(path)
    expected = paid[:2]
    assert len(expected) == 2

    page.goto(base + "/")
    page.locator("#email").wait_for()
    shot(page, "01_sign_in")
    sign_in(page, "ops@ordersdesk.test")
    wait_for_text(page, "No orders selected")
    shot(page, "02_orders_all")

    page.locator(".st-key-orders_tab").get_by_role("radio", name=re.compile(r"^Paid")).click()
    page.wait_for_url(re.compile(r"status=paid"))
    page.get_by_text(f"Select all {len(paid)} matching orders", exact=True).wait_for()
    tick_row(page, 0)
    wait_for_text(page, f"1 selected: {expected[0]}")
    tick_row(page, 1)
    wait_for_text(page, f"2 selected: {expected[0]}, {expected[1]}")
    shot(page, "03_orders_paid_two_selected")

    page.locator(".st-key-orders_mass_actions button").click()
    page.get_by_role("menuitem", name="Fulfill").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Will be processed").wait_for()
    shot(page, "04_mass_action_preflight")
    dialog.locator(".st-key-mass_confirm button").click()
    notice = page.get_by_test_id("stMainBlockContainer").get_by_text(  # not the toast of a quick job
        re.compile(r"Job #\d+ (is (queued|running): Fulfill 2 orders|finished: 2 fulfilled)")
    )
    notice.wait_for()
    job_id = re.search(r"Job #(\d+)", notice.inner_text()).group(1)
    wait_for_text(page, "No orders selected")  # the selection cleared
    shot(page, "05_job_queued")

    # (the main area's link: a toast may offer the same one when the job finishes)
    page.get_by_test_id("stMainBlockContainer").get_by_role("link", name=f"Open job #{job_id}").click()
    page.wait_for_url(re.compile(rf"/jobs\?job={job_id}"))
    # The Jobs page refreshes itself while the job runs; bounded wait for Completed.
    badge(page, "Completed").first.wait_for(timeout=45_000)
    shot(page, "06_job_completed")

    open_order_in_app(page, expected[0])
    assert_status(page, expected[0], "Fulfilled")
    shot(page, "07_order_fulfilled_1")

    # The second one through a link: the session holds, no sign-in again.
    page.goto(f"{base}/order?number={expected[1]}")
    assert_status(page, expected[1], "Fulfilled")
    shot(page, "08_order_fulfilled_2")

    # A shared link of a filtered view opens that view, still signed in.
    page.goto(f"{base}/orders?status=fulfilled&q={expected[0]}")
    page.locator(".st-key-orders_tab").get_by_role("radio", name=re.compile(r"^Fulfilled")).and_(
        page.locator("[aria-checked=true]")
    ).wait_for()
    assert page.locator(".st-key-orders_filter_q input").input_value() == expected[0]
    page.get_by_text("Showing 1–1 of 1 orders").wait_for()
    shot(page, "10_orders_view_after_reload")
    assert page.alerts == []


def hostile_text_is_literal(site, page) -> None:
    base, _, hostile_order = site
    page.goto(f"{base}/order?number={hostile_order}")
    sign_in(page, "support@ordersdesk.test")
    assert_status(page, hostile_order, "Fulfilled")
    page.get_by_text(HOSTILE, exact=True).first.wait_for()  # the customer's name, as typed

    page.locator(".st-key-order_note_text textarea").fill(HOSTILE)
    page.get_by_role("button", name="Add note").click()
    page.get_by_text("Note added to the timeline.").wait_for()
    # The name and the note, as text: a retrying expectation, since while the page
    # reruns the old timeline and the new one can both be on screen for a moment.
    texts = page.locator("[data-testid=stText]").filter(has_text=HOSTILE)
    sync_api.expect(texts).to_have_count(2, timeout=15_000)
    assert page.locator('img[src="x"]').count() == 0
    assert page.locator("img[onerror]").count() == 0
    shot(page, "09_order_hostile_text")
    assert page.alerts == []
