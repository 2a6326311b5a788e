"""The order page's gateway facts and the Stripe events page, run headless through the
real entry point with streamlit.testing.v1.AppTest on a seeded SQLite file: a refund
made outside Orders Desk flags the order (Needs attention, the refund listed), support
marks it reviewed, an analyst only reads; the Stripe events page lists the inbox and
its unmatched events. Widgets are found by key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from orders_core import db as orders_db
from orders_core import demo
from orders_core.payment_events import read_payment_events
from orders_core.staff import SYSTEM
from orders_core.stripe_events import process_pending_events, receive_event
from orders_core.stripe_events import simulated as simulated_gateway
from pages.ui.resources import get_db, get_gateways
from tests.support import stripe_events as stripe
from tests.support.app_server import first_order
from tests.support.staff_browser import FakeBrowser, use_fake_browser

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")
ORDER_PAGE = "pages/order_detail.py"
EVENTS_PAGE = "pages/stripe_events_page.py"
SUPPORT, ANALYST = "support@ordersdesk.test", "analyst@ordersdesk.test"


@pytest.fixture
def db(sqlite_template: Path, tmp_path: Path, monkeypatch):
    path = tmp_path / "orders.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    monkeypatch.setenv("ORDERS_DATABASE_URL", url)
    monkeypatch.setenv("ORDERS_EMBEDDED_WORKER", "0")
    get_db.clear()
    get_gateways.clear()
    database = orders_db.open_database(url)
    demo.seed(database, orders=20, random_seed=7)
    yield database
    get_db.clear()
    get_gateways.clear()
    orders_db.forget_databases()


@pytest.fixture
def browser(monkeypatch) -> FakeBrowser:
    return use_fake_browser(monkeypatch, FakeBrowser())


def app_as(db, browser, email: str, page: str, **params) -> AppTest:
    browser.sign_in(db, email)
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    at.switch_page(page)
    at.query_params.update({k: str(v) for k, v in params.items()})
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def table_with(at: AppTest, *columns: str) -> list:
    """The dataframes showing these columns (AppTest's dataframes carry no key)."""
    return [d for d in at.dataframe if set(columns) <= set(d.value.columns)]


def test_an_external_refund_flags_the_order_and_support_marks_it_reviewed(db, browser):
    number = first_order(db, "paid")
    delivered = simulated_gateway.refund_outside(db, number, amount=150)
    process_pending_events(db)

    at = app_as(db, browser, SUPPORT, ORDER_PAGE, number=number)
    assert any("needs attention" in w.value for w in at.warning)
    assert any(delivered.object_id in t.value for t in at.text)
    [refunds_table] = [
        d for d in at.dataframe if list(d.value.columns) == ["When", "Amount", "Status", "Gateway refund id"]
    ]
    assert list(refunds_table.value["Gateway refund id"]) == [delivered.object_id]

    at.button(key="order_attention_clear").click().run()
    assert not at.exception
    assert not read_payment_events(db, number, actor=SYSTEM).needs_attention
    assert not [w for w in at.warning if "needs attention" in w.value]


def test_an_analyst_sees_the_flag_but_cannot_clear_it(db, browser):
    number = first_order(db, "paid")
    simulated_gateway.refund_outside(db, number, amount=150)
    process_pending_events(db)
    at = app_as(db, browser, ANALYST, ORDER_PAGE, number=number)
    assert any("needs attention" in w.value for w in at.warning)
    assert not [b for b in at.button if b.key == "order_attention_clear"]


def test_the_stripe_events_page_lists_events_and_filters_the_unmatched(db, browser):
    number = first_order(db, "paid")
    simulated_gateway.open_dispute(db, number)
    stranger = stripe.event("refund.created", stripe.refund("re_stranger", "pi_not_ours", amount=100))
    receive_event(db, stranger)
    process_pending_events(db)

    at = app_as(db, browser, ANALYST, EVENTS_PAGE)
    [table] = table_with(at, "Event id")
    assert sorted(table.value["Outcome"]) == ["Applied", "Unmatched"]

    at.toggle(key="stripe_events_unmatched").set_value(True).run()
    [table] = table_with(at, "Event id")
    assert list(table.value["Event id"]) == [stranger["id"]]
    assert list(table.value["Order"]) == [None]
