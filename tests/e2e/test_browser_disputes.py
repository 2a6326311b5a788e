"""A disputed order in a real browser (Chromium against `streamlit run app.py`): the
simulated gateway opens a dispute (its event goes through the inbox like Stripe's),
the order page shows the Disputed badge and the dispute's details, and Fulfil asks
for an explicit yes before it ships; the orders list's Disputed filter finds it.
Screenshots at 1280 and 1920 px go to tests/artifacts/screenshots/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect

from orders_core import db as orders_db
from orders_core import demo
from orders_core.queries import read_order
from orders_core.stripe_events import process_pending_events
from orders_core.stripe_events import simulated as simulated_gateway
from tests.support.app_server import CHROMIUM, app_server, first_order, heading, shot, sign_in, wait_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]
expect.set_options(timeout=20_000)  # a shared machine: the first page load can be slow

if not Path(CHROMIUM).exists():  # pragma: no cover - scripts/test.sh installs it
    pytest.skip("Debian's Chromium (/usr/bin/chromium) is not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def site(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory):
    data_dir = tmp_path_factory.mktemp("disputes-data")
    path = data_dir / "orders.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    db = orders_db.open_database(url)
    demo.seed(db, orders=30, random_seed=12)
    disputed = first_order(db, "paid")
    simulated_gateway.open_dispute(db, disputed, reason="product_not_received")
    refunded = first_order(db, "fulfilled")
    simulated_gateway.refund_outside(db, refunded, amount=500)
    process_pending_events(db)
    with app_server(url, data_dir, ORDERS_EMBEDDED_WORKER="1") as base:
        yield base, db, disputed, refunded
    orders_db.forget_databases()


def test_a_disputed_order_shows_its_badge_and_fulfil_asks_for_a_confirmation(site, person):
    base, db, number, _ = site
    page = person()
    page.goto(f"{base}/order?number={number}")
    sign_in(page, "ops@ordersdesk.test", demo.DEMO_PASSWORD)
    expect(heading(page, f"Order {number}")).to_be_visible()
    expect(page.locator(".st-key-order_header").get_by_text("Disputed")).to_be_visible()
    expect(heading(page, "Disputes")).to_be_visible()
    expect(page.get_by_text("Product not received")).to_be_visible()
    expect(page.get_by_text("Disputed amount")).to_be_visible()
    wait_idle(page)
    shot(page, "disputed-order-1280")
    page.set_viewport_size({"width": 1920, "height": 1100})
    shot(page, "disputed-order-1920")
    page.set_viewport_size({"width": 1280, "height": 1000})

    page.locator(".st-key-order_action_fulfill button").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text(f"{number} is disputed")).to_be_visible()
    confirm = dialog.locator(".st-key-order_move_confirm button")
    expect(confirm).to_be_disabled()
    shot(page, "disputed-order-fulfil-asks")
    assert read_order(db, number).status == "paid"

    dialog.get_by_text("I know this order is disputed; fulfil it anyway").click()
    expect(confirm).to_be_enabled()
    confirm.click()
    expect(page.get_by_text(f"{number} is now Fulfilled.")).to_be_visible()
    wait_idle(page)
    shot(page, "disputed-order-fulfilled")
    assert read_order(db, number).status == "fulfilled"


def test_the_orders_list_filters_disputed_orders_and_flags_them(site, person):
    base, _, number, _ = site
    page = person()
    page.goto(f"{base}/?disputed=1")
    sign_in(page, "analyst@ordersdesk.test", demo.DEMO_PASSWORD)
    expect(heading(page, "Orders")).to_be_visible()
    wait_idle(page)
    expect(page.get_by_text("Showing 1–1 of 1 orders")).to_be_visible()
    expect(page.locator(".st-key-orders_filter_disputed input")).to_be_checked()
    shot(page, "orders-disputed-filter")


def test_the_stripe_events_page_lists_the_dispute_event(site, person):
    base, _, number, _ = site
    page = person()
    page.goto(f"{base}/stripe-events")
    sign_in(page, "analyst@ordersdesk.test", demo.DEMO_PASSWORD)
    expect(heading(page, "Stripe events")).to_be_visible()
    expect(page.get_by_text("Applied: 2")).to_be_visible()
    page.locator("[data-testid='stDataFrame']").first.wait_for()
    page.wait_for_timeout(1500)  # the grid paints its canvas after it appears
    shot(page, "stripe-events-page")


def test_an_order_refunded_outside_orders_desk_shows_it_needs_attention(site, person):
    base, _, _, number = site
    page = person()
    page.goto(f"{base}/order?number={number}")
    sign_in(page, "support@ordersdesk.test", demo.DEMO_PASSWORD)
    expect(page.locator(".st-key-order_header").get_by_text("Needs attention")).to_be_visible()
    expect(heading(page, "Refunds made outside Orders Desk")).to_be_visible()
    wait_idle(page)
    shot(page, "order-needs-attention-1280")
    page.locator(".st-key-order_attention_clear button").click()
    expect(page.locator(".st-key-order_header").get_by_text("Needs attention")).to_have_count(0)
    shot(page, "order-reviewed")
