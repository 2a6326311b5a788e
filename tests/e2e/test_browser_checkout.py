"""The real app in Debian's headless Chromium: `streamlit run app.py` on a
free port against a seeded SQLite database in a temp dir.

- The demo customer signs in on the Demo checkout page (no staff sign-in), buys a
  digital pass with tok_visa and sees the order number and "Paid".
- An admin signs in and opens Jobs (with a job), Analytics and Staff.
Screenshots go to tests/artifacts/screenshots/. Every wait is bounded; the server is
killed in `finally`."""

from __future__ import annotations

import re
import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import select

from orders_core import db as orders_db
from orders_core import demo, jobs
from orders_core.queries import OrderFilters
from orders_core.schema import orders
from orders_core.staff import find_staff
from tests.support.app_server import CHROMIUM, CHROMIUM_ARGS, app_server, settled, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "tests" / "artifacts" / "screenshots"
STEP_MS = 30_000  # the longest any single wait in the page may take


@contextmanager
def streamlit_server(database_url: str, data_dir: Path, log_path: Path):
    with app_server(database_url, data_dir) as base:
        yield base


@contextmanager
def chromium_page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1440, "height": 1000})
            page = context.new_page()
            page.set_default_timeout(STEP_MS)
            yield page
        finally:
            browser.close()


@pytest.fixture
def seeded_url(sqlite_template, tmp_path) -> str:
    path = tmp_path / "orders.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    demo.seed(orders_db.open_database(url), orders=200, random_seed=21)
    orders_db.forget_databases()  # the server opens it itself
    return url


def shot(page, name: str) -> None:
    """The whole page: Streamlit scrolls inside its main block, so the viewport is made
    as tall as the content for the picture, then put back."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    height = page.evaluate("""() => {
        const main = document.querySelector('[data-testid="stMain"]');
        return Math.max(main ? main.scrollHeight : 0, document.body.scrollHeight);
    }""")
    before = page.viewport_size
    page.set_viewport_size(
        {"width": before["width"], "height": max(before["height"], min(int(height) + 40, 6000))}
    )
    settled(page)  # charts and tables redraw at the new size
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    page.set_viewport_size(before)


def wait_idle(page) -> None:
    """Until Streamlit has finished the current run (its status widget is gone)."""
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=STEP_MS
    )


def keyed(page, key: str):
    """The element container Streamlit marks for a widget or container `key`."""
    return page.locator(f".st-key-{key}")


def pick(page, key: str, option_text: str) -> None:
    """Choose an option of a keyed st.selectbox by (part of) its label. A rerun that
    redraws the widget mid-way is retried (three tries, each bounded)."""
    from playwright.sync_api import Error as PlaywrightError

    wanted = re.compile(re.escape(option_text))
    box = keyed(page, key).get_by_role("combobox")
    for attempt in range(3):
        try:
            wait_idle(page)
            box.click(timeout=5_000)
            box.fill(option_text, timeout=5_000)  # narrows the list to the wanted option
            option = page.get_by_role("option", name=wanted).first
            option.wait_for(state="visible", timeout=5_000)
            option.click(timeout=5_000)
            wait_idle(page)
            page.wait_for_function(
                "([sel, text]) => { const e = document.querySelector(sel);"
                " return e && e.value.includes(text); }",
                arg=[f".st-key-{key} input[role=combobox]", option_text],
                timeout=5_000,
            )
            return
        except PlaywrightError:
            if attempt == 2:
                raise
            page.keyboard.press("Escape")
    raise AssertionError(f"could not choose {option_text!r} in {key}")


def test_demo_customer_buys_a_digital_pass(seeded_url, tmp_path):
    from playwright.sync_api import expect

    with (
        streamlit_server(seeded_url, tmp_path / "data", tmp_path / "streamlit.log") as base,
        chromium_page() as page,
    ):
        page.goto(base)  # the sign-in page links the checkout, which needs no staff sign-in
        page.get_by_role("link", name="Demo checkout").first.click()
        expect(page.get_by_role("heading", name="Demo checkout")).to_be_visible()
        keyed(page, "checkout_sign_in_email").locator("input").fill(demo.DEMO_CUSTOMER_EMAIL)
        keyed(page, "checkout_sign_in_password").locator("input").fill(demo.DEMO_PASSWORD)
        shot(page, "checkout-1-sign-in")
        keyed(page, "checkout_sign_in").locator("button").click()
        expect(page.get_by_text("Signed in as")).to_be_visible()
        wait_idle(page)

        pick(page, "checkout_product", "Digital day pass")
        pick(page, "checkout_sku", "$9.99")
        pick(page, "checkout_token", "tok_visa —")
        expect(keyed(page, "checkout_addr_line1")).to_have_count(0)  # digital: no address
        shot(page, "checkout-2-cart")
        keyed(page, "checkout_place").locator("button").click()

        receipt = keyed(page, "checkout_receipt")
        expect(receipt.get_by_text("is placed and paid")).to_be_visible()
        expect(receipt.get_by_test_id("stMetricValue").filter(has_text="Paid")).to_be_visible()
        expect(receipt.get_by_text("$9.99").first).to_be_visible()  # the receipt renders in steps
        wait_idle(page)
        text = receipt.inner_text()
        number = re.search(r"ORD-\d{6}", text).group(0)
        assert "Paid" in text and "$9.99" in text
        shot(page, "checkout-3-paid")

    db = orders_db.open_database(seeded_url)
    with db.read() as conn:
        row = conn.execute(select(orders).where(orders.c.number == number)).one()
    assert (row.status, row.customer_email, row.total_amount) == ("paid", demo.DEMO_CUSTOMER_EMAIL, 999)


def test_admin_sees_jobs_analytics_and_staff(seeded_url, tmp_path):
    from playwright.sync_api import expect

    db = orders_db.open_database(seeded_url)
    ops = find_staff(db, "ops@ordersdesk.test").as_actor()
    job = jobs.enqueue(db, ops, "fulfill", filters=OrderFilters.parse(max_total="25", currency="usd"))
    from orders_core.job_engine import run_job_here

    job = run_job_here(db, job.id)
    orders_db.forget_databases()

    with (
        streamlit_server(seeded_url, tmp_path / "data", tmp_path / "streamlit.log") as base,
        chromium_page() as page,
    ):
        page.goto(base)
        sign_in(page, "admin@ordersdesk.test", demo.DEMO_PASSWORD)
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()
        wait_idle(page)

        page.get_by_role("link", name="Jobs").first.click()
        expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
        expect(page.get_by_text(f"#{job.id} · Fulfill orders")).to_be_visible()
        expect(page.get_by_test_id("stProgress").first).to_be_visible()
        expect(page.get_by_test_id("stMetric").first).to_be_visible()
        wait_idle(page)
        shot(page, "jobs-1-list")
        keyed(page, f"job_row_{job.id}").get_by_role("link", name="Open").click()
        expect(page.get_by_role("heading", name=f"Job #{job.id} · Fulfill orders")).to_be_visible()
        # Its failures are orders that were never Paid: no retry can fix them, and the page says why.
        expect(page.get_by_role("button", name=re.compile(r"^Retry"))).to_be_disabled()
        expect(page.get_by_text(re.compile(r"cannot: .*the order is")).first).to_be_visible()
        wait_idle(page)
        page.wait_for_url(re.compile(rf"[?&]job={job.id}\b"), timeout=10_000)
        expect(page.get_by_test_id("stTable").first).to_be_visible()  # every order, with its outcome
        expect(page.get_by_role("button", name=re.compile("Download failures CSV"))).to_be_visible()
        shot(page, "jobs-2-detail")

        page.get_by_role("link", name="Analytics").first.click()
        expect(page.get_by_role("heading", name="Key figures")).to_be_visible()
        expect(page.get_by_role("heading", name="Fulfilment")).to_be_visible()
        shot(page, "analytics-1-by-day")
        keyed(page, "analytics_grain").get_by_text("Week", exact=True).click()
        wait_idle(page)
        expect(page.get_by_test_id("stVegaLiteChart").first).to_be_visible()
        wait_idle(page)
        shot(page, "analytics-2-by-week")

        page.get_by_role("link", name="Staff").first.click()
        expect(page.get_by_role("heading", name="Add a staff member")).to_be_visible()
        expect(page.get_by_test_id("stDataFrame").first).to_be_visible()
        wait_idle(page)
        shot(page, "staff")
