"""Details that read as finished, in Debian's Chromium against the app as the README
starts it: analytics figures are never cut off from 1280 px up; no email anywhere is a
mailto link; an ops person takes payment for a Created order (a decline, then a good
card) from its page. Screenshots at 1280 and 1920 px go to
tests/artifacts/screenshots/details_*.png."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import update

from orders_core import db as orders_db
from orders_core import demo
from orders_core.schema import orders
from tests.support.app_server import (
    app_server,
    choose,
    first_order,
    heading,
    new_page,
    shot,
    sign_in,
    wait_idle,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = demo.DEMO_PASSWORD
ADMIN, OPS = "admin@ordersdesk.test", "ops@ordersdesk.test"
WIDTHS = (1280, 1920)


@pytest.fixture(scope="module")
def site(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory):
    """(base URL, database) on a seeded copy whose totals are large (six-figure revenues)."""
    data_dir = tmp_path_factory.mktemp("details-data")
    path = data_dir / "orders.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    db = orders_db.open_database(url)
    demo.seed(db, orders=120, random_seed=5)
    with db.write() as conn:  # the figures of a busy shop: hundreds of thousands per currency
        conn.execute(
            update(orders).values(
                total_amount=orders.c.total_amount * 97, refunded_amount=orders.c.refunded_amount * 97
            )
        )
    orders_db.forget_databases()
    with app_server(url, data_dir) as base:
        yield base, orders_db.open_database(url)
    orders_db.forget_databases()


@pytest.mark.parametrize("width", WIDTHS)
def test_analytics_figures_are_never_cut_off(site, chromium_browser, width):
    base, _ = site
    page = new_page(chromium_browser, width=width, height=1000)
    try:
        page.goto(f"{base}/analytics")
        sign_in(page, ADMIN, PASSWORD)
        heading(page, "Key figures").wait_for()
        wait_idle(page)
        values = page.locator("[class*='st-key-analytics_tiles_'] [data-testid=stMetricValue]")
        values.first.wait_for()
        measured = values.evaluate_all(
            """els => els.map(e => {
                const inner = e.querySelector('div') || e;
                return {text: e.innerText, scroll: inner.scrollWidth, client: inner.clientWidth,
                        width: e.getBoundingClientRect().width};
            })"""
        )
        assert len(measured) >= 6 * 3  # three currencies, six figures each
        assert any(m["text"].endswith("k") for m in measured), measured  # big enough to need it
        for m in measured:
            assert "…" not in m["text"], m
            assert m["scroll"] <= m["client"] + 1, m  # nothing hidden behind an ellipsis
        labels = page.locator("[class*='st-key-analytics_tiles_'] [data-testid=stMetricLabel]")
        for m in labels.evaluate_all(
            "els => els.map(e => ({text: e.innerText, scroll: e.scrollWidth, client: e.clientWidth}))"
        ):
            assert m["scroll"] <= m["client"] + 1, m
        shot(page, f"details_analytics_{width}")
    finally:
        page.context.close()


def test_no_email_on_any_page_is_a_mailto_link(site, chromium_browser):
    base, db = site
    number = first_order(db, "paid")
    page = new_page(chromium_browser, width=1280, height=1000)
    try:
        page.goto(f"{base}/order?number={number}")
        sign_in(page, ADMIN, PASSWORD)
        heading(page, f"Order {number}").wait_for()
        for path, title, name in (
            (f"/order?number={number}", f"Order {number}", "order"),
            ("/staff", "Staff", "staff"),
            ("/account", "My account", "account"),
            ("/orders", "Orders", "orders"),
        ):
            page.goto(base + path)
            heading(page, title).wait_for()
            wait_idle(page)
            page.get_by_text(ADMIN).first.wait_for()  # the sidebar, at least, names the person
            assert page.locator("a[href^='mailto:']").count() == 0, path
            assert "mailto:" not in page.content(), path
            shot(page, f"details_no_mailto_{name}")
    finally:
        page.context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_ops_takes_payment_for_a_created_order_after_a_decline(site, chromium_browser, width):
    base, db = site
    number = first_order(db, "created")
    page = new_page(chromium_browser, width=width, height=1000)
    try:
        page.goto(f"{base}/order?number={number}")
        sign_in(page, OPS, PASSWORD)
        heading(page, f"Order {number}").wait_for()
        panel = page.locator(".st-key-order_take_payment")
        panel.wait_for()
        choose(page, "order_pay_token", "tok_chargeDeclinedInsufficientFunds")
        page.locator(".st-key-order_pay button").click()
        panel.get_by_text("The payment failed: Your card has insufficient funds.").wait_for()
        shot(page, f"details_take_payment_declined_{width}")
        choose(page, "order_pay_token", "tok_visa")
        page.locator(".st-key-order_pay button").click()
        page.get_by_text(f"{number} is now Paid").wait_for()
        # The panel of the run before stays on the page until the new run ends (Streamlit
        # clears stale elements last, and its running indicator shows only after a delay).
        page.locator(".st-key-order_take_payment").wait_for(state="detached", timeout=15_000)
        wait_idle(page)
        page.get_by_text("Payment failed").first.wait_for()  # the declined attempt, in the timeline
        code = page.locator("[data-testid=stCode] pre").first  # the gateway payment id
        code.wait_for()
        fits = code.evaluate("e => ({text: e.innerText, scroll: e.scrollWidth, client: e.clientWidth})")
        assert fits["text"].strip().startswith("pi_") and "\n" not in fits["text"].strip(), fits
        assert fits["scroll"] <= fits["client"] + 1, fits  # whole on one line: nothing scrolled away
        shot(page, f"details_take_payment_paid_{width}")
    finally:
        page.context.close()
