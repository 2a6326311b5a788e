"""The Orders and Order pages, run headless with streamlit.testing.v1.AppTest through
the real entry point (sign-in gate + st.navigation), against a seeded SQLite file.

Widgets are found by key, never by position. No background worker runs here
(ORDERS_EMBEDDED_WORKER=0): a mass action is checked by the job it queues."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select, update
from streamlit.testing.v1 import AppTest

from orders_core import db as orders_db
from orders_core import demo, lifecycle
from orders_core.addresses import PostalAddress, address_lines
from orders_core.schema import job_items, jobs, order_events, orders, refunds
from orders_core.staff import find_staff, set_staff_active, set_staff_role
from pages.ui.display import escape_markdown, money
from pages.ui.orders_view import PAGE_SIZE, parse_orders_params
from pages.ui.plain_text import markdown_literal
from pages.ui.resources import get_db, get_gateways
from pages.ui.statuses import STATUS_COLORS
from pages.ui.thresholds import confirm_above_orders, confirm_above_refund, needs_typed_confirmation
from tests.support.staff_browser import FakeBrowser, use_fake_browser

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")
ORDERS_PAGE = "pages/orders_page.py"
ORDER_PAGE = "pages/order_detail.py"
HOSTILE = "<img src=x onerror=alert(1)>"
SEED_ORDERS = 200
TIMEOUT = 30

OPS, SUPPORT, ANALYST, ADMIN = (f"{r}@ordersdesk.test" for r in ("ops", "support", "analyst", "admin"))


# -- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def seeded_template(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file with the demo staff, catalog and 200 orders, made once."""
    path = tmp_path_factory.mktemp("seeded") / "orders.db"
    shutil.copyfile(sqlite_template, path)
    engine = orders_db.create_database_engine(f"sqlite:///{path}")
    try:
        demo.seed(orders_db.Database(engine), orders=SEED_ORDERS, random_seed=20261126)
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()
    return path


def _use_database(monkeypatch, url: str) -> orders_db.Database:
    monkeypatch.setenv("ORDERS_DATABASE_URL", url)
    monkeypatch.setenv("ORDERS_EMBEDDED_WORKER", "0")
    monkeypatch.delenv("ORDERS_CONFIRM_ABOVE_ORDERS", raising=False)
    monkeypatch.delenv("ORDERS_CONFIRM_ABOVE_REFUND", raising=False)
    get_db.clear()  # st.cache_resource outlives one AppTest: forget the last test's
    get_gateways.clear()
    return orders_db.open_database(url)


@pytest.fixture
def db(seeded_template: Path, tmp_path: Path, monkeypatch) -> orders_db.Database:
    path = tmp_path / "orders.db"
    shutil.copyfile(seeded_template, path)
    database = _use_database(monkeypatch, f"sqlite:///{path}")
    yield database
    get_db.clear()
    get_gateways.clear()
    orders_db.forget_databases()


@pytest.fixture
def empty_db(sqlite_database_url: str, monkeypatch) -> orders_db.Database:
    """No orders at all; only the demo staff (needed to sign in) and catalog."""
    database = _use_database(monkeypatch, sqlite_database_url)
    demo.seed(database, orders=0)
    yield database
    get_db.clear()
    get_gateways.clear()


@pytest.fixture(autouse=True)
def browser(monkeypatch) -> FakeBrowser:
    """This test's browser: its cookies are what st.context.cookies reads."""
    global _BROWSER
    _BROWSER = use_fake_browser(monkeypatch, FakeBrowser())
    return _BROWSER


_BROWSER: FakeBrowser | None = None


def app_as(db, email: str, *, on: str | None = None, **params) -> AppTest:
    """The app signed in as `email` (a real session, its cookie in this test's browser),
    on page file `on` (default: Orders), with URL `params`."""
    _BROWSER.sign_in(db, email)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    if on or params:
        if on:
            at.switch_page(on)
        at.query_params.clear()
        at.query_params.update({k: str(v) for k, v in params.items()})
        at.run()
    return at


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> list[str]:
    return [t.value for t in at.text]


def grid(at: AppTest):
    editors = [e for e in at.data_editor if (e.key or "").startswith("orders_grid_")]
    assert len(editors) == 1, [e.key for e in at.data_editor]
    return editors[0]


def link_query(link: str) -> dict[str, list[str]]:
    parts = urlsplit(link)
    assert parts.path == "/order", link
    return parse_qs(parts.query)


def grid_numbers(at: AppTest) -> list[str]:
    """The order numbers of the grid's rows (each shown as a link to its order)."""
    return [link_query(link)["number"][0] for link in grid(at).value["Order"]]


def menu(at: AppTest):
    return at.get_by_key("orders_mass_actions")


def tick(at: AppTest, *rows: int) -> AppTest:
    at.session_state[grid(at).key] = {
        "edited_rows": {r: {"Select": True} for r in rows},
        "added_rows": [],
        "deleted_rows": [],
    }
    return ok(at.run())


def order_row(db, number: str):
    with db.read() as conn:
        return conn.execute(select(orders).where(orders.c.number == number)).one()


def numbers_in(db, status: str) -> list[str]:
    with db.read() as conn:
        return list(
            conn.execute(
                select(orders.c.number).where(orders.c.status == status).order_by(orders.c.id)
            ).scalars()
        )


def plain(markdown: str) -> str:
    """Markdown that the page escaped (escape_markdown), as the reader sees it."""
    return re.sub(r"\\(.)", r"\1", markdown)


def warnings(at: AppTest) -> str:
    return "\n".join(plain(w.value) for w in at.warning)


# -- sign-in and the Orders page -----------------------------------------------------------------
def test_a_signed_in_browser_opens_the_orders_page_with_live_counts(db):
    at = ok(app_as(db, OPS))
    assert at.title[0].value == "Orders"
    with db.read() as conn:
        paid = len(list(conn.execute(select(orders.c.id).where(orders.c.status == "paid"))))
    options = at.get_by_key("orders_tab").options
    assert options[0] == f"All · {SEED_ORDERS}"
    assert f"Paid · {paid}" in options
    assert len(grid(at).value) == PAGE_SIZE  # one page, never the whole table
    assert f"Showing 1–{PAGE_SIZE} of {SEED_ORDERS} orders" in [c.value for c in at.caption]


EXPECTED_MENUS = {
    ANALYST: {
        "all": ["Export"],
        "created": ["Export"],
        "paid": ["Export"],
        "fulfilled": ["Export"],
        "canceled": ["Export"],
        "returned": ["Export"],
    },
    SUPPORT: {
        "all": ["Export"],
        "created": ["Export"],
        "paid": ["Export", "Cancel"],
        "fulfilled": ["Export", "Return"],
        "canceled": ["Export"],
        "returned": ["Export"],
    },
    OPS: {
        "all": ["Export"],
        "created": ["Export"],
        "paid": ["Export", "Fulfill", "Cancel"],
        "fulfilled": ["Export", "Return"],
        "canceled": ["Export"],
        "returned": ["Export"],
    },
    ADMIN: {
        "all": ["Export"],
        "created": ["Export"],
        "paid": ["Export", "Fulfill", "Cancel"],
        "fulfilled": ["Export", "Return"],
        "canceled": ["Export"],
        "returned": ["Export"],
    },
}


@pytest.mark.parametrize("email", list(EXPECTED_MENUS))
def test_each_tab_offers_the_mass_actions_of_its_status_and_role(db, email):
    at = app_as(db, email)
    for tab, expected in EXPECTED_MENUS[email].items():
        at.get_by_key("orders_tab").set_value(tab)
        ok(at.run())
        assert at.query_params.get("status", "all") == tab
        assert menu(at).options == expected, (email, tab)
        assert menu(at).disabled  # nothing selected yet
        statuses = {s for cell in grid(at).value["Status"] for s in cell}
        assert statuses <= ({tab} if tab != "all" else set(STATUS_COLORS)), (tab, statuses)


def test_tab_and_filters_live_in_the_url_and_come_back_from_it(db):
    at = app_as(db, OPS)
    at.get_by_key("orders_tab").set_value("fulfilled")
    ok(at.run())
    at.selectbox(key="orders_filter_currency").set_value("usd")
    at.text_input(key="orders_filter_min").input("20")
    at.text_input(key="orders_filter_max").input("99.5")
    ok(at.button(key="orders_apply").click().run())
    assert at.query_params == {"status": "fulfilled", "currency": "usd", "min": "20", "max": "99.50"}
    rows = [order_row(db, n) for n in grid_numbers(at)]
    assert rows and all(2000 <= r.total_amount <= 9950 and r.currency == "usd" for r in rows)

    # A fresh session opened on that URL shows the same view.
    again = app_as(db, OPS, status="fulfilled", currency="usd", min="20", max="99.50")
    assert again.get_by_key("orders_tab").value == "fulfilled"
    assert again.text_input(key="orders_filter_min").value == "20"
    assert grid_numbers(again) == grid_numbers(at)

    ok(at.button(key="orders_clear").click().run())
    assert at.query_params == {"status": "fulfilled"}


def test_ticked_rows_are_exactly_the_orders_the_job_acts_on(db):
    at = app_as(db, OPS, status="paid")
    shown = grid_numbers(at)
    tick(at, 0, 1)
    assert f"2 selected: {shown[0]}, {shown[1]}" in texts(at)
    assert not menu(at).disabled
    ok(menu(at).click("fulfill").run())
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"Requested": "2", "Will be processed": "2", "Will fail": "0"}
    confirm = at.button(key="mass_confirm")
    assert confirm.label == "Fulfill 2 orders" and not confirm.disabled
    ok(confirm.click().run())

    with db.read() as conn:
        [job] = conn.execute(select(jobs)).all()
        items = list(
            conn.execute(
                select(job_items.c.order_number).where(job_items.c.job_id == job.id).order_by(job_items.c.seq)
            ).scalars()
        )
    assert job.action == "fulfill" and job.actor == OPS and job.total == 2
    assert items == shown[:2]
    assert any(f"Job #{job.id} is queued" in s.value for s in at.success)  # no worker here
    assert "No orders selected" in texts(at)  # the selection is cleared
    assert at.get_by_key("orders_tab").value == "paid"


def test_selection_survives_paging_and_is_kept_by_order_number(db):
    at = app_as(db, OPS)
    first_page = grid_numbers(at)
    tick(at, 3)
    at.query_params["page"] = "2"
    ok(at.run())
    second_page = grid_numbers(at)
    assert not set(first_page) & set(second_page)
    tick(at, 0)
    assert f"2 selected: {first_page[3]}, {second_page[0]}" in texts(at)
    ok(at.button(key="orders_clear_selection").click().run())
    assert "No orders selected" in texts(at)
    ok(at.button(key="orders_select_page").click().run())
    assert f"{len(second_page)} selected: " in " ".join(texts(at))
    assert grid(at).value["Select"].all()


def test_select_all_matching_queues_by_filter_with_a_typed_confirmation(db, monkeypatch):
    paid = numbers_in(db, "paid")
    monkeypatch.setenv("ORDERS_CONFIRM_ABOVE_ORDERS", str(len(paid) - 1))
    monkeypatch.setenv("ORDERS_CONFIRM_ABOVE_REFUND", str(10**12))
    at = app_as(db, SUPPORT, status="paid")
    select_all = at.button(key="orders_select_matching")
    assert select_all.label == f"Select all {len(paid)} matching orders"
    ok(select_all.click().run())
    assert f"All {len(paid)} matching orders selected" in texts(at)
    ok(menu(at).click("cancel").run())
    confirm = at.button(key="mass_confirm")
    assert confirm.disabled  # above the threshold: the count must be typed first
    assert confirm.label.startswith(f"Cancel {len(paid)} orders and refund ")
    at.text_input(key="mass_confirm_count").input("12345")
    ok(at.run())
    assert at.button(key="mass_confirm").disabled
    at.text_input(key="mass_confirm_count").input(str(len(paid)))
    ok(at.run())
    at.text_area(key="mass_reason").input("Supplier recall")  # a mass Cancel needs its reason
    ok(at.button(key="mass_confirm").click().run())
    with db.read() as conn:
        [job] = conn.execute(select(jobs)).all()
        items = set(
            conn.execute(select(job_items.c.order_number).where(job_items.c.job_id == job.id)).scalars()
        )
    assert job.action == "cancel" and job.total == len(paid) and items == set(paid)
    assert "status paid" in job.selection and job.reason == "Supplier recall"


def test_small_mass_action_needs_no_typing_and_preflight_names_failures(db):
    at = app_as(db, OPS, status="paid")
    tick(at, 0, 1)
    # Someone fulfils one of them meanwhile: the preflight says it will fail, and why.
    lifecycle.fulfill_order(db, find_staff(db, ADMIN).as_actor(), grid_numbers(at)[0])
    ok(menu(at).click("cancel").run())
    assert {m.label: m.value for m in at.metric} == {
        "Requested": "2",
        "Will be processed": "1",
        "Will fail": "1",
    }
    assert any(
        "Cancel applies to Paid orders only" in str(cell)
        for df in at.dataframe
        for cell in df.value.get("Reason", [])
    )
    assert not [t for t in at.text_input if t.key == "mass_confirm_count"]
    ok(at.button(key="mass_back").click().run())
    with db.read() as conn:
        assert conn.execute(select(jobs)).first() is None


@pytest.mark.parametrize(
    "params, notice",
    [
        ({"status": "bogus"}, "status='bogus'"),
        ({"from": "2026-13-45"}, "from='2026-13-45'"),
        ({"to": "yesterday"}, "to='yesterday'"),
        ({"page": "-1"}, "page='-1'"),
        ({"page": str(10**9)}, f"page='{10**9}'"),
        ({"page": "abc"}, "page='abc'"),
        ({"min": "abc"}, "min='abc'"),
        ({"max": "1e9"}, "max='1e9'"),
        ({"min": "50"}, "Ignored min='50': Min total needs a currency"),
        ({"currency": "dollars"}, "Ignored currency='dollars': Currency: "),
        ({"unfulfilled": "-3"}, "Ignored unfulfilled='-3': Unfulfilled over (days)"),
        (
            {"to": "2026-01-01", "from": "2026-02-01"},
            "Created to 2026-01-01 is before Created from 2026-02-01",
        ),
        ({"sort": "password"}, "sort='password'"),
        ({"sku": "X" * 80}, "sku="),
        ({"q": "a\x00b"}, "q="),
    ],
)
def test_bad_url_parameters_fall_back_to_defaults_with_a_notice(db, params, notice):
    at = ok(app_as(db, OPS, **params))
    assert notice in warnings(at), warnings(at)
    dropped = next(iter(params))  # the bad one; a range keeps its other end
    assert dropped not in at.query_params  # the URL shows what is on screen
    assert at.get_by_key("orders_tab").value == "all"
    assert len(grid(at).value) == PAGE_SIZE


def test_a_page_past_the_end_shows_page_one_with_a_notice(db):
    at = ok(app_as(db, OPS, page=99))
    assert "There is no page 99" in warnings(at)
    assert "page" not in at.query_params
    assert len(grid(at).value) == PAGE_SIZE


@pytest.mark.parametrize("q", ["%", "' OR 1=1 --", "\\", "%'; DROP TABLE orders; --", "ORD-%", "a%b"])
def test_search_text_is_literal_not_sql_or_wildcards(db, q):
    at = ok(app_as(db, OPS, q=q))
    assert not at.warning
    assert at.query_params["q"] == q
    assert not [e for e in at.data_editor if (e.key or "").startswith("orders_grid_")]
    assert any("No orders match" in i.value for i in at.info)
    assert order_row(db, "ORD-000001").id == 1  # the table is still there


def test_an_underscore_in_the_search_matches_only_a_literal_underscore(db):
    at = ok(app_as(db, OPS, q="_"))
    shown = grid(at).value
    assert len(shown) > 0
    assert all("_" in f"{e}{n}" for e, n in zip(shown["Email"], shown["Customer"]))
    assert int(re.search(r"of (\d+) orders", " ".join(c.value for c in at.caption)).group(1)) < SEED_ORDERS


def test_search_finds_by_number_email_and_name(db):
    row = order_row(db, "ORD-000042")
    for q in ("ORD-000042", row.customer_email.upper(), row.customer_name.split()[0]):
        at = ok(app_as(db, ANALYST, q=q))
        assert "ORD-000042" in grid_numbers(at), q


def test_a_broad_search_says_its_counts_stop_at_the_limit_and_counts_exactly_on_demand(db, monkeypatch):
    from orders_core import queries

    monkeypatch.setattr(queries, "COUNT_LIMIT", 20)
    with db.read() as conn:
        matching = [
            s
            for e, n, s in conn.execute(
                select(orders.c.customer_email, orders.c.customer_name, orders.c.status)
            )
            if "example" in f"{e} {n}".lower()
        ]
    assert len(matching) > 20
    at = ok(app_as(db, SUPPORT, q="example"))
    options = at.get_by_key("orders_tab").options
    assert options[0] == "All · 20+" and "Paid · …" in options  # a bound, never a guess
    captions = [c.value for c in at.caption]
    assert any(c.startswith("More than 20 orders match") for c in captions)
    # at least the limit, and at least the orders shown up to this page's last
    assert f"Showing 1–{PAGE_SIZE} of {PAGE_SIZE}+ orders" in captions
    assert at.button(key="orders_select_matching").label == f"Select all {PAGE_SIZE}+ matching orders"
    assert len(grid(at).value) == min(PAGE_SIZE, len(matching))

    ok(at.button(key="orders_count_exactly").click().run())
    options = at.get_by_key("orders_tab").options
    assert options[0] == f"All · {len(matching)}"
    assert f"Paid · {matching.count('paid')}" in options
    assert any(c.endswith(f"of {len(matching)} orders") for c in (c.value for c in at.caption))
    assert not [b for b in at.button if b.key == "orders_count_exactly"]


def test_open_an_order_from_the_list(db):
    at = app_as(db, OPS)
    number = grid_numbers(at)[2]
    # the number is a link to the order that carries the list it came from
    assert link_query(grid(at).value["Order"][2]) == {"number": [number]}  # the plain list: no back
    at.selectbox(key="orders_open_number").select(number)
    ok(at.run())
    ok(at.button(key="orders_open_button").click().run())
    assert at.title[0].value == f"Order {number}"
    assert at.query_params == {"number": number}


def test_empty_database_every_tab_and_the_detail_page(empty_db):
    at = app_as(empty_db, ADMIN)
    assert at.get_by_key("orders_tab").options[0] == "All · 0"
    assert any("No orders yet" in i.value for i in at.info)
    for tab in ("created", "paid", "fulfilled", "canceled", "returned"):
        at.get_by_key("orders_tab").set_value(tab)
        ok(at.run())
        assert not [e for e in at.data_editor if (e.key or "").startswith("orders_grid_")]
    assert not [b for b in at.button if b.key == "orders_select_matching"]
    detail = ok(app_as(empty_db, ADMIN, on=ORDER_PAGE, number="ORD-000001"))
    assert detail.title[0].value == "Order not found"


# -- the Order page -------------------------------------------------------------------------------
def first_in(db, status: str) -> str:
    return numbers_in(db, status)[0]


EXPECTED_BUTTONS = {
    "created": {OPS: ["cancel"], SUPPORT: ["cancel"], ANALYST: [], ADMIN: ["cancel"]},
    "paid": {OPS: ["fulfill", "cancel"], SUPPORT: ["cancel"], ANALYST: [], ADMIN: ["fulfill", "cancel"]},
    "fulfilled": {OPS: ["return"], SUPPORT: ["return"], ANALYST: [], ADMIN: ["return"]},
    "canceled": {OPS: [], SUPPORT: [], ANALYST: [], ADMIN: []},
    "returned": {OPS: [], SUPPORT: [], ANALYST: [], ADMIN: []},
}


@pytest.mark.parametrize("status", list(EXPECTED_BUTTONS))
def test_detail_offers_only_legal_moves_allowed_to_the_role(db, status):
    number = first_in(db, status)
    for email, expected in EXPECTED_BUTTONS[status].items():
        at = ok(app_as(db, email, on=ORDER_PAGE, number=number))
        assert at.title[0].value == f"Order {number}"
        shown = [
            b.key.removeprefix("order_action_")
            for b in at.button
            if (b.key or "").startswith("order_action_")
        ]
        assert shown == expected, (status, email)
        notes = [t for t in at.text_area if t.key == "order_note_text"]
        assert bool(notes) == (email != ANALYST)


def test_cancel_with_confirmation_cancels_and_refunds(db):
    number = first_in(db, "paid")
    before = order_row(db, number)
    refund = money(before.total_amount, before.currency)
    at = app_as(db, SUPPORT, on=ORDER_PAGE, number=number)
    ok(at.button(key="order_action_cancel").click().run())
    confirm = at.button(key="order_move_confirm")
    assert confirm.label == escape_markdown(f"Cancel and refund {refund} to the card")
    assert f"{number} will be canceled and {refund} refunded to the customer's card." in texts(at)
    assert order_row(db, number).status == "paid"  # nothing happens before confirming
    at.text_area(key="order_move_reason").input("Customer asked by phone")
    ok(at.run())
    ok(at.button(key="order_move_confirm").click().run())

    after = order_row(db, number)
    assert after.status == "canceled" and after.refunded_amount == before.total_amount
    with db.read() as conn:
        [refund] = conn.execute(select(refunds).where(refunds.c.order_id == after.id)).all()
        [event] = conn.execute(
            select(order_events).where(order_events.c.order_id == after.id, order_events.c.action == "cancel")
        ).all()
    assert refund.status == "succeeded" and refund.amount == before.total_amount
    assert event.actor == SUPPORT and event.note.startswith("Customer asked by phone")
    assert any("is now Canceled" in s.value for s in at.success)
    assert not [b for b in at.button if (b.key or "").startswith("order_action_")]


# -- access withdrawn while the tab is open ------------------------------------------------------
def test_a_tab_left_open_by_a_deactivated_agent_refunds_nothing_at_its_next_click(db):
    number = first_in(db, "paid")
    at = app_as(db, SUPPORT, on=ORDER_PAGE, number=number)
    ok(at.button(key="order_action_cancel").click().run())
    assert at.button(key="order_move_confirm")
    set_staff_active(db, find_staff(db, ADMIN).as_actor(), SUPPORT, False)

    ok(at.button(key="order_move_confirm").click().run())

    after = order_row(db, number)
    assert after.status == "paid" and after.refunded_amount == 0
    with db.read() as conn:
        assert conn.execute(select(refunds).where(refunds.c.order_id == after.id)).all() == []
    assert any(
        e.value.startswith(f"Your session has ended: your account was deactivated by {plain_email(ADMIN)}")
        for e in at.error
    ), [e.value for e in at.error]
    assert not [b for b in at.button if (b.key or "").startswith("order_")]
    assert any('action="/sign-in"' in h.proto.body for h in at.get("html"))


def test_a_demoted_agent_sees_the_session_end_and_cannot_fulfil(db):
    number = first_in(db, "paid")
    at = app_as(db, OPS, on=ORDER_PAGE, number=number)
    ok(at.button(key="order_action_fulfill").click().run())
    set_staff_role(db, find_staff(db, ADMIN).as_actor(), OPS, "analyst")

    ok(at.button(key="order_move_confirm").click().run())

    assert order_row(db, number).status == "paid"
    assert any("your role was changed to Analyst" in e.value for e in at.error)
    again = ok(app_as(db, OPS, on=ORDER_PAGE, number=number))  # signed in again: an analyst now
    assert not [b for b in again.button if (b.key or "").startswith("order_action_")]
    assert "Analyst" in " ".join(t.value for t in again.sidebar.text)


def plain_email(email: str) -> str:
    """An email as pages put it in Markdown: escaped, and never made a link."""
    return markdown_literal(email)


def test_backing_out_of_a_confirmation_changes_nothing(db):
    number = first_in(db, "paid")
    at = app_as(db, OPS, on=ORDER_PAGE, number=number)
    ok(at.button(key="order_action_fulfill").click().run())
    assert any("No money moves" in t for t in texts(at))
    ok(at.button(key="order_move_back").click().run())
    assert not [b for b in at.button if b.key == "order_move_confirm"]
    assert order_row(db, number).status == "paid"


def test_someone_else_changing_the_order_meanwhile_is_a_clear_message(db):
    number = first_in(db, "paid")
    at = app_as(db, OPS, on=ORDER_PAGE, number=number)
    ok(at.button(key="order_action_fulfill").click().run())
    lifecycle.cancel_order(db, find_staff(db, ADMIN).as_actor(), number)
    ok(at.button(key="order_move_confirm").click().run())
    assert any("Someone else changed" in e.value and "Canceled" in e.value for e in at.error)
    assert order_row(db, number).status == "canceled"


def test_a_declined_refund_is_a_clear_message(db):
    number = first_in(db, "fulfilled")
    with db.write() as conn:  # the payment the refund would go back to has vanished
        conn.exec_driver_sql(
            "UPDATE payments SET status = 'failed' WHERE order_id = ?", (order_row(db, number).id,)
        )
    at = app_as(db, SUPPORT, on=ORDER_PAGE, number=number)
    ok(at.button(key="order_action_return").click().run())
    ok(at.button(key="order_move_confirm").click().run())
    assert any("no successful payment to refund" in e.value.replace("\\", "") for e in at.error)
    assert order_row(db, number).status == "fulfilled"


def test_a_hostile_note_and_customer_name_are_shown_as_literal_text(db):
    number = first_in(db, "paid")
    with db.write() as conn:
        conn.execute(
            update(orders)
            .where(orders.c.number == number)
            .values(customer_name=HOSTILE + " **bold** [x](javascript:alert(1))")
        )
    at = app_as(db, SUPPORT, on=ORDER_PAGE, number=number)
    at.text_area(key="order_note_text").input(HOSTILE + "\n# not a heading")
    ok(at.button(key="FormSubmitter:order_note_form-Add note").click().run())

    assert HOSTILE + " **bold** [x](javascript:alert(1))" in texts(at)
    assert HOSTILE + "\n# not a heading" in texts(at)
    assert at.text_area(key="order_note_text").value == ""
    rendered_markdown = " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)
    assert "<img" not in rendered_markdown and "javascript:" not in rendered_markdown
    with db.read() as conn:
        notes = list(
            conn.execute(
                select(order_events.c.note).where(
                    order_events.c.order_id == order_row(db, number).id, order_events.c.action == "note"
                )
            ).scalars()
        )
    assert notes == [HOSTILE + "\n# not a heading"]


def test_an_empty_note_is_refused_with_a_message(db):
    number = first_in(db, "paid")
    at = app_as(db, SUPPORT, on=ORDER_PAGE, number=number)
    ok(at.button(key="FormSubmitter:order_note_form-Add note").click().run())
    assert any("Note is required" in e.value for e in at.error)


@pytest.mark.parametrize(
    "number", ["ORD-999999", "nonsense", "'; DROP TABLE orders; --", "ORD-" + "9" * 30, HOSTILE]
)
def test_a_missing_order_is_a_clear_message(db, number):
    at = ok(app_as(db, OPS, on=ORDER_PAGE, number=number))
    assert at.title[0].value == "Order not found"
    assert any("There is no order" in e.value for e in at.error)
    assert not re.search(r"(?<!\\)<", " ".join(e.value for e in at.error))  # only escaped


def test_no_order_number_offers_a_search(db):
    at = ok(app_as(db, OPS, on=ORDER_PAGE))
    assert any("No order chosen" in i.value for i in at.info)
    at.text_input(key="order_find_number").input("42")
    ok(at.button(key="FormSubmitter:order_find-Open").click().run())
    assert at.title[0].value == "Order ORD-000042"


def test_detail_shows_items_payment_refunds_and_timeline(db):
    number = first_in(db, "returned")
    row = order_row(db, number)
    at = ok(app_as(db, ANALYST, on=ORDER_PAGE, number=number))
    assert {m.label: m.value for m in at.metric}["Refunded"] == money(row.refunded_amount, row.currency)
    frames = [df.value for df in at.dataframe]
    items = next(f for f in frames if "Unit price" in f.columns)
    assert all(v.startswith(("$", "€", "£", "¥")) for v in items["Unit price"])
    refunds_frame = next(f for f in frames if "Gateway refund id" in f.columns)
    assert list(refunds_frame["Status"]) == ["Succeeded"]
    assert any(c.value.startswith("Gateway payment id") for c in at.caption)
    assert any(m.value == "**Returned**" for m in at.markdown)  # a timeline entry


# -- the pure helpers behind the pages (pages/ui/) --------------------------------------------------
@pytest.mark.parametrize(
    "params, minor",
    [
        ({"min": "19.99", "currency": "usd"}, 1999),
        ({"min": "1,250.00", "currency": "eur"}, 125000),
        ({"min": " 7.05 ", "currency": "gbp"}, 705),
        ({"min": "5000", "currency": "jpy"}, 5000),
        ({"min": "1.005", "currency": "kwd"}, 1005),
    ],
)
def test_amounts_in_the_url_are_in_their_currencys_own_units(params, minor):
    view, notices = parse_orders_params(params)
    assert notices == [] and view.filters.min_total == minor
    assert parse_orders_params(view.params())[0] == view


@pytest.mark.parametrize("text", ["abc", "1e3", "12.345", "-5", "0x10", "nan", "inf", "1.2.3", "5 000"])
def test_malformed_amounts_in_the_url_are_dropped_with_a_notice_naming_the_field(text):
    view, notices = parse_orders_params({"min": text, "currency": "usd"})
    assert view.filters.min_total is None and view.filters.currency == "usd"
    [notice] = notices
    assert notice.startswith(f"Ignored min={text!r}: Min total: ")


def test_escaped_markdown_keeps_every_character_literal():
    hostile = HOSTILE + " **b** _i_ [x](javascript:alert(1)) ![i](http://t/x.png) :red[r] $x$ `c` # h"
    escaped = escape_markdown(hostile)
    assert plain(escaped) == hostile
    assert not re.search(r"(?<!\\)[<>\[\]()*_`$:#!]", escaped)


def test_typed_confirmation_thresholds_come_from_the_environment(monkeypatch):
    monkeypatch.delenv("ORDERS_CONFIRM_ABOVE_ORDERS", raising=False)
    monkeypatch.delenv("ORDERS_CONFIRM_ABOVE_REFUND", raising=False)
    assert (confirm_above_orders(), confirm_above_refund()) == (100, 100_000)
    assert not needs_typed_confirmation(100, {"usd": 100_000})
    assert needs_typed_confirmation(101, {})
    assert needs_typed_confirmation(1, {"jpy": 100_001})
    monkeypatch.setenv("ORDERS_CONFIRM_ABOVE_ORDERS", "5")
    monkeypatch.setenv("ORDERS_CONFIRM_ABOVE_REFUND", "not a number")  # → the default
    assert (confirm_above_orders(), confirm_above_refund()) == (5, 100_000)


def test_view_parameters_round_trip():
    params = {
        "status": "paid",
        "from": "2026-01-01",
        "to": "2026-01-31",
        "q": "Zoë",
        "sku": "TOTE-USD",
        "currency": "usd",
        "min": "19.99",
        "max": "250",
        "unfulfilled": "14",
        "page": "3",
        "sort": "-total_amount",
    }
    view, notices = parse_orders_params(params)
    assert notices == [] and view.params() == params
    assert view.filters.min_total == 1999 and view.filters.max_total == 25000
    assert parse_orders_params({"status": "PAID"})[0].params() == {"status": "paid"}


# -- taking payment, refunded card, address convention, plain emails (issue 11 §5, §6) ------------
# Ops and admins charge a Created order with a test card token from its page; a decline
# is said plainly and the order stays Created; every attempt is in the timeline.


def events_of(db, number: str) -> list:
    with db.read() as conn:
        return conn.execute(
            select(order_events)
            .join(orders, orders.c.id == order_events.c.order_id)
            .where(orders.c.number == number)
            .order_by(order_events.c.id)
        ).all()


def take_payment(at, token: str):
    at.selectbox(key="order_pay_token").set_value(token)
    ok(at.run())
    return ok(at.button(key="order_pay").click().run())


@pytest.mark.parametrize("email", [OPS, ADMIN])
def test_ops_and_admins_take_payment_for_a_created_order_from_its_page(db, email):
    number = first_in(db, "created")
    before = order_row(db, number)
    at = ok(app_as(db, email, on=ORDER_PAGE, number=number))
    pay = at.button(key="order_pay")
    assert pay.label == f"Charge {money(before.total_amount, before.currency)}"

    take_payment(at, "tok_visa")

    after = order_row(db, number)
    assert after.status == "paid" and after.paid_at is not None
    charged = money(before.total_amount, before.currency)
    assert any(
        f"{number} is now Paid: {charged} charged to the card." in s.value.replace("\\", "")
        for s in at.success
    )
    last = events_of(db, number)[-1]
    assert (last.action, last.actor, last.from_status, last.to_status) == ("pay", email, "created", "paid")
    assert not [b for b in at.button if b.key == "order_pay"]  # a Paid order is not offered it again


def test_a_declined_card_is_said_plainly_the_order_stays_created_and_the_attempt_is_in_the_timeline(db):
    number = first_in(db, "created")
    attempts_before = len([e for e in events_of(db, number) if e.action == "payment_failed"])
    at = ok(app_as(db, OPS, on=ORDER_PAGE, number=number))

    take_payment(at, "tok_chargeDeclinedInsufficientFunds")

    assert order_row(db, number).status == "created"
    assert [e.value for e in at.error] == [
        "The payment failed: " + escape_markdown("Your card has insufficient funds.")
    ]
    assert any("insufficient_funds" in c.value for c in at.caption)
    failed = [e for e in events_of(db, number) if e.action == "payment_failed"]
    assert len(failed) == attempts_before + 1 and failed[-1].actor == OPS
    assert "insufficient_funds" in failed[-1].note
    assert at.button(key="order_pay")  # another card can be tried at once


@pytest.mark.parametrize("email", [SUPPORT, ANALYST])
def test_roles_without_the_take_payments_permission_are_not_offered_it(db, email):
    at = ok(app_as(db, email, on=ORDER_PAGE, number=first_in(db, "created")))
    assert not [b for b in at.button if b.key == "order_pay"]
    assert not [s for s in at.selectbox if s.key == "order_pay_token"]


def test_a_fully_refunded_payment_reads_refunded_on_its_card(db):
    number = first_in(db, "returned")
    row = order_row(db, number)
    at = ok(app_as(db, ANALYST, on=ORDER_PAGE, number=number))
    assert f"{money(row.total_amount, row.currency)} · Refunded" in texts(at)
    paid = first_in(db, "paid")
    paid_row = order_row(db, paid)
    at = ok(app_as(db, ANALYST, on=ORDER_PAGE, number=paid))
    assert f"{money(paid_row.total_amount, paid_row.currency)} · Succeeded" in texts(at)


@pytest.mark.parametrize(
    ("country", "city", "region", "postal_code", "locality"),
    [
        ("US", "Chicago", "IL", "60614", ["Chicago, IL 60614"]),
        ("GB", "London", "", "SW1Y 4JH", ["London", "SW1Y 4JH"]),
    ],
)
def test_the_shipping_address_follows_the_countrys_convention(
    db, country, city, region, postal_code, locality
):
    number = first_in(db, "paid")
    with db.write() as conn:
        conn.execute(
            update(orders)
            .where(orders.c.number == number)
            .values(
                ship_name="Ada Lovelace",
                ship_line1="1 Main St",
                ship_line2="",
                ship_city=city,
                ship_region=region,
                ship_postal_code=postal_code,
                ship_country=country,
            )
        )
    at = ok(app_as(db, ANALYST, on=ORDER_PAGE, number=number))
    expected = "\n".join(["Ada Lovelace", "1 Main St", *locality, country])
    assert expected in texts(at)
    assert expected.split("\n") == address_lines(
        PostalAddress("Ada Lovelace", "1 Main St", "", city, region, postal_code, country)
    )


def test_the_customers_email_and_the_signed_in_email_are_plain_text_never_markdown(db):
    number = first_in(db, "paid")
    row = order_row(db, number)
    at = ok(app_as(db, SUPPORT, on=ORDER_PAGE, number=number))
    assert row.customer_email in texts(at)
    assert f"{SUPPORT} · Support" in texts(at)  # the sidebar
    markdown = [m.value for m in at.markdown] + [c.value for c in at.caption]
    assert not any("@" in m.replace("\\@", "") or "\\@" in m for m in markdown), markdown
