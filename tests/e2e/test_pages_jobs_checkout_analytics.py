"""The Jobs, Demo checkout, Analytics and Staff pages through Streamlit's AppTest,
on a fresh SQLite database seeded with 200 demo orders (or an empty one).

The app is the real entry point (streamlit_app.py, sign-in gate and navigation);
widgets are found by key. ORDERS_EMBEDDED_WORKER=0: jobs only move when a test
runs them."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import pytest
import streamlit as st
from sqlalchemy import func, select, update
from streamlit.testing.v1 import AppTest

from orders_core import db as orders_db
from orders_core import demo, jobs
from orders_core.compact_figures import compact_count, compact_money
from orders_core.money import format_money
from orders_core.queries import OrderFilters
from orders_core.schema import job_items, orders
from orders_core.schema import jobs as jobs_table
from orders_core.staff import SYSTEM, find_staff
from pages.ui import display
from tests.support.staff_browser import FakeBrowser, use_fake_browser

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "streamlit_app.py")
PASSWORD = demo.DEMO_PASSWORD
ADMIN, OPS, SUPPORT, ANALYST = (s[0] for s in demo.DEMO_STAFF)
ROLES = {"admin": ADMIN, "ops": OPS, "support": SUPPORT, "analyst": ANALYST}
TIMEOUT = 60


# -- fixtures --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seeded_template(tmp_path_factory, sqlite_template) -> Path:
    """A migrated SQLite file with demo.seed(orders=200), copied for each test."""
    path = tmp_path_factory.mktemp("seeded") / "orders.db"
    shutil.copyfile(sqlite_template, path)
    engine = orders_db.create_database_engine(f"sqlite:///{path}")
    try:
        demo.seed(orders_db.Database(engine), orders=200, random_seed=11)
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def _use_database(monkeypatch, url: str) -> orders_db.Database:
    monkeypatch.setenv("ORDERS_DATABASE_URL", url)
    monkeypatch.setenv("ORDERS_EMBEDDED_WORKER", "0")
    st.cache_resource.clear()  # pages.ui.resources.get_db() is cached per process
    st.cache_data.clear()
    return orders_db.open_database(url)


@pytest.fixture
def seeded_db(seeded_template, tmp_path, monkeypatch):
    path = tmp_path / "orders.db"
    shutil.copyfile(seeded_template, path)
    yield _use_database(monkeypatch, f"sqlite:///{path}")
    st.cache_resource.clear()
    orders_db.forget_databases()


@pytest.fixture
def empty_db(sqlite_template, tmp_path, monkeypatch):
    """Migrated, no catalog, no orders, no jobs; only the demo staff to sign in with."""
    path = tmp_path / "empty.db"
    shutil.copyfile(sqlite_template, path)
    db = _use_database(monkeypatch, f"sqlite:///{path}")
    demo.ensure_demo_staff(db)
    yield db
    st.cache_resource.clear()
    orders_db.forget_databases()


# -- helpers ---------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def browser(monkeypatch) -> FakeBrowser:
    """This test's browser: its cookies are what st.context.cookies reads."""
    global _BROWSER
    _BROWSER = use_fake_browser(monkeypatch, FakeBrowser())
    return _BROWSER


_BROWSER: FakeBrowser | None = None


def start(email: str | None = None) -> AppTest:
    """The app in this test's browser, signed in as `email` (a real session) or not."""
    if email is not None:
        _BROWSER.sign_in(orders_db.open_database(), email)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    if email is not None:
        assert email in " ".join(t.value for t in at.sidebar.text)  # plain text, never a link
    return at


def open_page(at: AppTest, page: str, **params) -> AppTest:
    at.switch_page(page)
    at.query_params.clear()
    at.query_params.update({k: str(v) for k, v in params.items()})
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def keys(elements) -> set:
    return {getattr(e, "key", None) for e in elements} - {None}


def texts(at: AppTest) -> str:
    parts = []
    for kind in (
        "markdown",
        "caption",
        "text",
        "success",
        "error",
        "warning",
        "info",
        "title",
        "header",
        "subheader",
    ):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)


def assert_no_staff_content(at: AppTest) -> None:
    """The staff page is not in the navigation, or shows nothing but a refusal."""
    try:
        at.switch_page("pages/staff_page.py")
    except ValueError:
        return  # not in this person's navigation at all
    at.run()
    assert not at.exception
    assert not any("Email" in d.value.columns for d in at.dataframe)
    assert not {"staff_create", "staff_save_role", "staff_toggle_active"} & keys(at.button)


def table_with(at: AppTest, column: str):
    """The first st.dataframe showing `column` (plain tables carry no key in AppTest)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def metrics(at: AppTest) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for m in at.metric:
        found.setdefault(m.label, []).append(m.value)
    return found


def sign_in_customer(at: AppTest, email=demo.DEMO_CUSTOMER_EMAIL, password=PASSWORD) -> AppTest:
    at.text_input(key="checkout_sign_in_email").input(email)
    at.text_input(key="checkout_sign_in_password").input(password)
    at.button(key="checkout_sign_in").click().run()
    assert not at.exception, at.exception
    return at


def choose_sku(at: AppTest, code: str) -> AppTest:
    """Pick the SKU's product, then the SKU (the product picker holds product ids)."""
    from orders_core.catalog import list_skus

    listing = next(s for s in list_skus(orders_db.open_database()) if s.code == code)
    at.selectbox(key="checkout_product").set_value(listing.product_id).run()
    at.selectbox(key="checkout_sku").set_value(code).run()
    assert not at.exception, at.exception
    return at


def customer_order_count(db, email: str) -> int:
    with db.read() as conn:
        return conn.execute(
            select(func.count())
            .select_from(orders)
            .where(func.lower(orders.c.customer_email) == email.lower())
        ).scalar_one()


def finished_fulfill_job(db) -> jobs.JobView:
    """A fulfill job over orders in several statuses, run to the end: the paid ones
    succeed, the others fail with the reason."""
    from orders_core.job_engine import run_job_here

    ops = find_staff(db, OPS).as_actor()
    job = jobs.enqueue(db, ops, "fulfill", filters=OrderFilters.parse(max_total="25", currency="usd"))
    finished = run_job_here(db, job.id)
    assert finished.finished and finished.failed > 0 and finished.succeeded > 0, finished
    return finished


# -- every page, every role -----------------------------------------------------------------

PAGES = ["pages/jobs_page.py", "pages/checkout_page.py", "pages/analytics_page.py"]


@pytest.mark.parametrize("role", list(ROLES))
def test_every_page_renders_for_every_role(seeded_db, role):
    at = start(ROLES[role])
    for page in PAGES:
        open_page(at, page)
        assert at.title, page
    if role == "admin":
        open_page(at, "pages/staff_page.py")
        table = table_with(at, "Email")
        assert ADMIN in set(table["Email"]) and set(table["Role"]) == {"Admin", "Ops", "Support", "Analyst"}
    else:
        assert_no_staff_content(at)


@pytest.mark.parametrize("role", ["analyst", "support", "ops"])
def test_staff_page_itself_refuses_non_admins(seeded_db, role):
    at = start(ROLES[role])
    open_page(at, "pages/staff_page.py")  # reachable by URL, though not in their menu
    assert any("Only admins" in e.value for e in at.error)
    assert not at.dataframe and not at.form_submit_button and not at.metric


def test_pages_need_staff_sign_in_except_checkout(seeded_db):
    at = start()
    assert any('action="/sign-in"' in h.proto.body for h in at.get("html"))
    assert any("Sign in to use Orders Desk" in i.value for i in at.info)
    assert_no_staff_content(at)
    open_page(at, "pages/checkout_page.py")
    assert at.text_input(key="checkout_sign_in_email")
    assert_no_staff_content(at)
    for page in (
        "pages/jobs_page.py",
        "pages/analytics_page.py",
        "pages/staff_page.py",
        "pages/order_detail.py",
    ):
        try:
            at.switch_page(page)
        except ValueError:
            continue  # not a page of the signed-out navigation at all
        at.run()
        assert not at.exception
        assert not at.metric and not at.dataframe and not at.get("progress")
        assert {t.value for t in at.title} <= {"Orders Desk"}  # the sign-in view or nothing


def test_empty_database_every_page_for_admin(empty_db):
    at = start(ADMIN)
    open_page(at, "pages/jobs_page.py")
    assert any("No jobs yet" in i.value for i in at.info)
    open_page(at, "pages/jobs_page.py", job="1")
    assert any("no job #1" in w.value.lower() for w in at.warning)
    open_page(at, "pages/analytics_page.py")
    assert any("No orders match" in i.value for i in at.info)
    assert not at.metric
    open_page(at, "pages/analytics_page.py", status="paid", days="10")
    open_page(at, "pages/staff_page.py")
    open_page(at, "pages/checkout_page.py")
    sign_in_customer(at)  # the demo customer does not exist in an empty database
    assert any("Unknown email or wrong password" in e.value for e in at.error)


def test_empty_catalog_checkout(empty_db):
    at = open_page(start(), "pages/checkout_page.py")
    at.text_input(key="checkout_sign_up_name").input("Ada Lovelace")
    at.text_input(key="checkout_sign_up_email").input("ada@example.test")
    at.text_input(key="checkout_sign_up_password").input("correct horse")
    at.button(key="checkout_sign_up").click().run()
    assert not at.exception
    assert any("catalog is empty" in i.value for i in at.info)
    assert "checkout_place" not in keys(at.button)


# -- jobs ---------------------------------------------------------------------------------


def test_jobs_list_shows_progress_and_detail_shows_failures(seeded_db):
    job = finished_fulfill_job(seeded_db)
    ops = find_staff(seeded_db, OPS).as_actor()
    running = jobs.enqueue(seeded_db, ops, "cancel", filters=OrderFilters.parse(status="paid"))
    with seeded_db.write() as conn:  # half of it done, as a worker would leave it midway
        half = running.total // 2
        conn.execute(
            update(job_items)
            .where(
                job_items.c.job_id == running.id,
                job_items.c.seq.in_(
                    select(job_items.c.seq)
                    .where(job_items.c.job_id == running.id)
                    .order_by(job_items.c.seq)
                    .limit(half)
                    .scalar_subquery()
                ),
            )
            .values(status="succeeded")
        )
        conn.execute(
            update(jobs_table)
            .where(jobs_table.c.id == running.id)
            .values(status="running", succeeded=half, started_at=dt.datetime.now(dt.UTC).replace(tzinfo=None))
        )

    at = open_page(start(ANALYST), "pages/jobs_page.py")
    body = texts(at)
    assert f"#{running.id} · Cancel orders" in body and f"#{job.id} · Fulfill orders" in body
    progress = [p.proto.value for p in at.get("progress")]
    assert len(progress) == 2 and progress[1] == 100
    assert abs(progress[0] - 100 * half / running.total) <= 1
    assert "Running" in body and "Completed with failures" in body
    assert f"{half:,} of {running.total:,} done" in "\n".join(p.proto.text for p in at.get("progress"))

    at = open_page(at, "pages/jobs_page.py", job=job.id)
    shown = metrics(at)
    assert shown["Orders"] == [f"{job.total:,}"]
    assert shown["Succeeded"] == [f"{job.succeeded:,}"] and shown["Failed"] == [f"{job.failed:,}"]
    at.segmented_control(key="job_items_outcome").set_value("failed").run()
    table = at.table[0].value
    expected = jobs.job_failures(seeded_db, job.id, actor=SYSTEM)
    assert list(table["Order"]) == [f"[{f['order']}](/order?number={f['order']})" for f in expected]
    assert [unescape(r) for r in table["Reason"]] == [f["reason"] for f in expected]  # in full
    assert all(reason for reason in table["Reason"]) and set(table["Retry can help"]) == {"No"}
    assert {"job_failures_download", "job_items_download"} <= keys(at.get("download_button"))
    # analyst: no Retry failed / Cancel job at all
    assert not {"job_retry_failed", "job_cancel"} & keys(at.button)


def unescape(markdown: str) -> str:
    """The text of a cell written with plain_text.markdown_literal."""
    return re.sub(r"\\(.)", r"\1", markdown).replace("\u2060", "")


def test_retry_failed_counts_only_the_failures_a_retry_can_fix_and_says_why_not_the_others(seeded_db):
    job = finished_fulfill_job(seeded_db)  # its failures: orders Created, Canceled, Fulfilled…
    with seeded_db.read() as conn:  # one failed order that was Created is Paid since
        created = conn.execute(
            select(job_items.c.order_number)
            .join(orders, orders.c.id == job_items.c.order_id)
            .where(job_items.c.job_id == job.id, job_items.c.status == "failed", orders.c.status == "created")
            .limit(1)
        ).scalar_one()
    with seeded_db.write() as conn:
        conn.execute(update(orders).where(orders.c.number == created).values(status="paid"))
    at = open_page(start(OPS), "pages/jobs_page.py", job=job.id)
    assert at.button(key="job_cancel").disabled  # finished: nothing to cancel
    retry = at.button(key="job_retry_failed")
    assert retry.label == "Retry 1 failed" and not retry.disabled
    why = " ".join(c.value for c in at.caption)
    assert f"1 of {job.failed:,} failed orders can be retried; {job.failed - 1:,} cannot" in unescape(why)
    assert "the order is Canceled now (Fulfill applies to Paid orders only)" in unescape(why)
    retry.click().run()
    assert not at.exception
    with seeded_db.read() as conn:
        new = conn.execute(select(jobs_table).where(jobs_table.c.retry_of == job.id)).one()
        retried = conn.execute(select(job_items.c.order_number).where(job_items.c.job_id == new.id)).scalars()
        assert list(retried) == [created]
    assert new.total == 1 and new.status == "queued" and new.actor == OPS
    assert at.query_params["job"] == str(new.id)
    assert any(f"Job #{new.id}" in h.value for h in at.header)
    assert any("queued to retry" in s.value for s in at.success)
    # the new, queued job can be canceled from its page
    at.button(key="job_cancel").click().run()
    assert not at.exception
    assert jobs.get_job(seeded_db, new.id, actor=SYSTEM).status == "canceled"


def test_export_job_offers_its_csv(seeded_db, tmp_path):
    from orders_core.job_engine import run_job_here

    analyst = find_staff(seeded_db, ANALYST).as_actor()
    job = run_job_here(
        seeded_db, jobs.enqueue(seeded_db, analyst, "export", filters=OrderFilters.parse(status="paid")).id
    )
    assert job.status == "completed" and job.export_path
    at = open_page(start(ANALYST), "pages/jobs_page.py", job=job.id)
    button = at.get("download_button")
    assert "job_export_download" in keys(button)
    label = next(b for b in button if b.key == "job_export_download").proto.label
    assert f"{job.export_rows:,} rows" in label


@pytest.mark.parametrize("value", ["abc", "-3", "0", "1.5", "99999999999", "<b>x</b>", ""])
def test_jobs_bad_or_missing_job_parameter(seeded_db, value):
    at = open_page(start(SUPPORT), "pages/jobs_page.py", job=value)
    if value:
        assert at.warning
        assert all("<b>" not in w.value for w in at.warning)
    else:
        assert not at.warning


def test_jobs_missing_job(seeded_db):
    at = open_page(start(OPS), "pages/jobs_page.py", job="424242")
    assert any("no job #424242" in w.value.lower() for w in at.warning)
    assert not {"job_retry_failed", "job_cancel"} & keys(at.button)


# -- checkout -------------------------------------------------------------------------------


def test_sign_up_then_buy_a_digital_pass(seeded_db):
    at = open_page(start(), "pages/checkout_page.py")  # no staff sign-in needed
    at.text_input(key="checkout_sign_up_name").input("Ada Lovelace")
    at.text_input(key="checkout_sign_up_email").input("ada@example.test")
    at.text_input(key="checkout_sign_up_password").input("correct horse")
    at.button(key="checkout_sign_up").click().run()
    assert not at.exception
    assert at.session_state["customer_account"].email == "ada@example.test"
    choose_sku(at, "PASS-DAY-USD")
    at.selectbox(key="checkout_token").set_value("tok_visa")
    at.button(key="checkout_place").click().run()
    assert not at.exception
    shown = metrics(at)
    number = shown["Order number"][0]
    assert shown["Status"] == ["Paid"]
    assert shown["Total"][-1] == format_money(999, "usd")
    with seeded_db.read() as conn:
        row = conn.execute(select(orders).where(orders.c.number == number)).one()
    assert row.status == "paid" and row.customer_email == "ada@example.test"
    assert row.ship_line1 is None  # digital: nothing to ship


def test_sign_in_and_decline_shows_the_reason(seeded_db):
    at = sign_in_customer(open_page(start(), "pages/checkout_page.py"))
    assert at.session_state["customer_account"].email == demo.DEMO_CUSTOMER_EMAIL
    choose_sku(at, "PASS-DAY-USD")
    at.selectbox(key="checkout_token").set_value("tok_chargeDeclinedInsufficientFunds")
    before = customer_order_count(seeded_db, demo.DEMO_CUSTOMER_EMAIL)
    at.button(key="checkout_place").click().run()
    assert not at.exception
    errors = " ".join(e.value for e in at.error)
    assert "insufficient funds" in errors and "insufficient\\_funds" in errors
    assert "Order number" not in metrics(at)
    # the decline names the order it left unpaid (from the error's order_number)
    assert any(c.value.startswith("Order ORD-") and "stays unpaid" in c.value for c in at.caption)
    # paying again with a good card pays that same order instead of making another
    at.selectbox(key="checkout_token").set_value("tok_visa")
    at.button(key="checkout_place").click().run()
    assert metrics(at)["Status"] == ["Paid"]
    assert customer_order_count(seeded_db, demo.DEMO_CUSTOMER_EMAIL) == before + 1


def test_every_test_token_is_listed_with_what_it_does(seeded_db):
    from orders_core.payments.card_tokens import TEST_TOKENS

    at = choose_sku(sign_in_customer(open_page(start(), "pages/checkout_page.py")), "PASS-DAY-USD")
    picker = at.selectbox(key="checkout_token")
    labels = list(picker.options)  # as shown: "token — what it does"
    assert len(labels) == len(TEST_TOKENS) + 1
    assert {label.split(" — ")[0] for label in labels[:-1]} == set(TEST_TOKENS)
    assert labels[-1].startswith("Another token")
    assert any("tok_visa" in o and "succeeds" in o for o in labels)
    assert any("tok_chargeDeclinedExpiredCard" in o and "expired" in o for o in labels)
    picker.set_value("__other__").run()
    at.text_input(key="checkout_token_other").input("sk_test_123")
    at.button(key="checkout_place").click().run()
    assert any("API key" in e.value for e in at.error)


def test_address_form_only_for_shippable_skus(seeded_db):
    at = open_page(start(), "pages/checkout_page.py")
    at.text_input(key="checkout_sign_up_name").input("Grace Hopper")
    at.text_input(key="checkout_sign_up_email").input("grace@example.test")
    at.text_input(key="checkout_sign_up_password").input("correct horse")
    at.button(key="checkout_sign_up").click().run()
    choose_sku(at, "PASS-ANNUAL-USD")
    assert "checkout_addr_line1" not in keys(at.text_input)
    assert "checkout_address_choice" not in keys(at.radio)
    choose_sku(at, "TOTE-USD")
    assert "checkout_addr_line1" in keys(at.text_input)  # no saved address: the form
    at.text_input(key="checkout_addr_line1").input("1 Infinite Loop")
    at.text_input(key="checkout_addr_city").input("Cupertino")
    at.text_input(key="checkout_addr_postal").input("95014")
    at.text_input(key="checkout_addr_country").input("us")
    at.button(key="checkout_place").click().run()
    assert not at.exception
    number = metrics(at)["Order number"][0]
    with seeded_db.read() as conn:
        row = conn.execute(select(orders).where(orders.c.number == number)).one()
    assert (row.status, row.ship_line1, row.ship_country) == ("paid", "1 Infinite Loop", "US")
    # the demo customer has saved addresses: offered to pick from
    at2 = choose_sku(sign_in_customer(open_page(start(), "pages/checkout_page.py")), "TOTE-USD")
    assert len(at2.radio(key="checkout_address_choice").options) >= 2


def test_checkout_lists_every_missing_address_field_at_once_each_at_its_field(seeded_db):
    at = open_page(start(), "pages/checkout_page.py")
    at.text_input(key="checkout_sign_up_name").input("Mary Jackson")
    at.text_input(key="checkout_sign_up_email").input("mary@example.test")
    at.text_input(key="checkout_sign_up_password").input("correct horse")
    at.button(key="checkout_sign_up").click().run()
    choose_sku(at, "TOTE-USD")
    at.text_input(key="checkout_addr_line1").input("1 Langley Blvd")  # city, postal code, country left empty
    before = customer_order_count(seeded_db, "mary@example.test")
    at.button(key="checkout_place").click().run()
    assert not at.exception
    assert customer_order_count(seeded_db, "mary@example.test") == before  # nothing stored
    assert at.session_state["checkout_field_errors"] == {
        "city": "City is required.",
        "postal_code": "Postal code is required.",
        "country": "Country is required.",
    }
    messages = [e.value for e in at.error]
    for message in ("City is required.", "Postal code is required.", "Country is required."):
        assert display.escape_markdown(message) in messages
    assert any("3 address fields need attention" in e.value for e in at.error)
    # each message is drawn in its field's column, right under the field
    city_column = min(
        (c for c in at.columns if "checkout_addr_city" in keys(c.text_input)), key=lambda c: len(c.text_input)
    )
    assert [e.value for e in city_column.error] == [display.escape_markdown("City is required.")]
    # filled in, the messages go and the order is placed
    at.text_input(key="checkout_addr_city").input("Hampton")
    at.text_input(key="checkout_addr_postal").input("23666")
    at.text_input(key="checkout_addr_country").input("US")
    at.button(key="checkout_place").click().run()
    assert not at.error
    assert metrics(at)["Status"] == ["Paid"]
    assert "Hampton, 23666" in " ".join(t.value for t in at.text)  # US style, no region given


def test_double_submit_creates_one_order(seeded_db):
    at = choose_sku(sign_in_customer(open_page(start(), "pages/checkout_page.py")), "PASS-DAY-EUR")
    before = customer_order_count(seeded_db, demo.DEMO_CUSTOMER_EMAIL)
    key = at.session_state["checkout_key"]
    at.button(key="checkout_place").click().run()
    first = metrics(at)["Order number"][0]
    at.button(key="checkout_place").click().run()  # the same form again, same key
    assert at.session_state["checkout_key"] == key
    assert metrics(at)["Order number"][0] == first
    at.run()  # a plain rerun
    assert customer_order_count(seeded_db, demo.DEMO_CUSTOMER_EMAIL) == before + 1
    with seeded_db.read() as conn:
        assert (
            conn.execute(
                select(func.count()).select_from(orders).where(orders.c.checkout_key == key)
            ).scalar_one()
            == 1
        )
    # a new order only when asked for
    at.button(key="checkout_new_order").click().run()
    assert at.session_state["checkout_key"] != key
    at.button(key="checkout_place").click().run()
    assert metrics(at)["Order number"][0] != first
    assert customer_order_count(seeded_db, demo.DEMO_CUSTOMER_EMAIL) == before + 2


def test_customer_markup_is_shown_as_text(seeded_db):
    at = open_page(start(), "pages/checkout_page.py")
    name = "<img src=x onerror=alert(1)> **Eve** [link](http://evil.test) $x$"
    at.text_input(key="checkout_sign_up_name").input(name)
    at.text_input(key="checkout_sign_up_email").input("eve@example.test")
    at.text_input(key="checkout_sign_up_password").input("correct horse")
    at.button(key="checkout_sign_up").click().run()
    assert not at.exception
    assert f"{name} · eve@example.test" in [t.value for t in at.text]  # st.text: never markup
    assert not any("<img" in m.value or "**Eve**" in m.value for m in at.markdown)
    assert not any("<img" in m.value for m in at.caption)
    for element in at.markdown:
        assert element.proto.allow_html is False


# -- analytics ---------------------------------------------------------------------------------


def expected_tiles(db, where=()) -> dict[str, tuple[str, str, str]]:
    paid = orders.c.paid_at.is_not(None)
    with db.read() as conn:
        rows = conn.execute(
            select(
                orders.c.currency,
                func.count(),
                func.coalesce(func.sum(orders.c.total_amount).filter(paid), 0),
                func.coalesce(func.sum(orders.c.refunded_amount), 0),
            )
            .where(*where)
            .group_by(orders.c.currency)
        ).all()
    return {c: (compact_count(n), compact_money(int(g), c), compact_money(int(r), c)) for c, n, g, r in rows}


def exact_tiles(db, where=()) -> dict[str, tuple[str, str]]:
    """Each currency's gross revenue and refunds to the cent, as their tooltips give them."""
    paid = orders.c.paid_at.is_not(None)
    with db.read() as conn:
        rows = conn.execute(
            select(
                orders.c.currency,
                func.coalesce(func.sum(orders.c.total_amount).filter(paid), 0),
                func.coalesce(func.sum(orders.c.refunded_amount), 0),
            )
            .where(*where)
            .group_by(orders.c.currency)
        ).all()
    return {c: (format_money(int(g), c), format_money(int(r), c)) for c, g, r in rows}


def shown_tiles(at: AppTest) -> dict[str, tuple[str, str, str]]:
    shown = metrics(at)
    heads = [
        m.value.strip("*").lower()
        for m in at.markdown
        if m.value.startswith("**") and m.value.strip("*").isalpha() and len(m.value) == 7
    ]
    return {
        c: (shown["Orders"][i], shown["Gross revenue"][i], shown["Refunds"][i]) for i, c in enumerate(heads)
    }


def test_analytics_tiles_equal_sql(seeded_db):
    at = open_page(start(ANALYST), "pages/analytics_page.py")
    expected = expected_tiles(seeded_db)
    assert len(expected) >= 3
    assert shown_tiles(at) == expected
    helps = {m.label: [] for m in at.metric}
    for m in at.metric:
        helps[m.label].append(m.help or "")
    exact = exact_tiles(seeded_db)
    assert sorted(h.split(" · ")[0] for h in helps["Gross revenue"]) == sorted(g for g, _ in exact.values())
    assert sorted(h.split(" · ")[0] for h in helps["Refunds"]) == sorted(r for _, r in exact.values())
    for key in (
        "analytics_csv_tiles",
        "analytics_csv_daily",
        "analytics_csv_funnel",
        "analytics_csv_top_skus",
    ):
        assert key in keys(at.get("download_button"))
    # the same through the filter form: paid orders only
    at.selectbox(key="analytics_filter_status").set_value("paid")
    at.button(key="analytics_apply").click().run()
    assert not at.exception
    assert at.query_params["status"] == "paid"
    assert shown_tiles(at) == expected_tiles(seeded_db, [orders.c.status == "paid"])


def test_analytics_from_url_filters(seeded_db):
    at = open_page(
        start(SUPPORT), "pages/analytics_page.py", status="fulfilled", sku="BOX-MONTHLY-USD", days="30"
    )
    assert not at.warning
    from orders_core.queries import OrderFilters as F

    where = F.parse(status="fulfilled", sku="BOX-MONTHLY-USD").conditions()
    assert shown_tiles(at) == expected_tiles(seeded_db, where)
    assert at.number_input(key="analytics_days").value == 30


@pytest.mark.parametrize(
    "params",
    [
        {"status": "nope"},
        {"from": "2026-02-30"},
        {"from": "2026-05-01", "to": "2026-01-01"},
        {"min": "lots"},
        {"min": "50", "max": "10"},
        {"days": "-1"},
        {"days": "x"},
        {"q": "<script>alert(1)</script>"},
        {"sku": "NO-SUCH-SKU"},
    ],
)
def test_analytics_bad_url_parameters(seeded_db, params):
    at = open_page(start(ANALYST), "pages/analytics_page.py", **params)
    assert not at.exception
    if params.keys() - {"q", "sku"}:
        assert at.warning
    for w in at.warning:
        assert "<script>" not in w.value


def test_analytics_unfulfilled_orders_list(seeded_db):
    at = open_page(start(ANALYST), "pages/analytics_page.py", days="1")
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with seeded_db.read() as conn:
        stale = conn.execute(
            select(func.count()).where(
                orders.c.status == "paid", orders.c.paid_at <= now - dt.timedelta(days=1)
            )
        ).scalar_one()
    assert metrics(at)["Paid, not fulfilled after 1 days"] == [f"{stale:,}"]
    if stale:
        table = table_with(at, "Days waiting")
        assert len(table) == min(stale, 500)
