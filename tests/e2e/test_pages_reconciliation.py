"""The Reconciliation page through Streamlit's AppTest, on the real entry point
(streamlit_app.py: sign-in gate and navigation) and a fresh SQLite database with the
demo catalog and staff. ORDERS_EMBEDDED_WORKER=0: the job moves when the test runs it.

An analyst picks a period and starts the job; the page re-reads the stored report: its
progress while queued, then the counts, the table and the CSV."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from orders_core import db as orders_db
from orders_core import demo, reconciliation_jobs
from orders_core.clock import utcnow
from orders_core.job_engine import run_job_here
from orders_core.payments.simulated import SimulatedGateway
from orders_core.staff import find_staff
from tests.support.staff_browser import FakeBrowser, use_fake_browser

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "streamlit_app.py")
PAGE = "pages/reconciliation_page.py"
ADMIN, OPS, SUPPORT, ANALYST = (s[0] for s in demo.DEMO_STAFF)
TIMEOUT = 60


@pytest.fixture
def db(sqlite_template, tmp_path, monkeypatch):
    path = tmp_path / "orders.db"
    shutil.copyfile(sqlite_template, path)
    monkeypatch.setenv("ORDERS_DATABASE_URL", f"sqlite:///{path}")
    monkeypatch.setenv("ORDERS_EMBEDDED_WORKER", "0")
    st.cache_resource.clear()
    st.cache_data.clear()
    database = orders_db.open_database(f"sqlite:///{path}")
    demo.ensure_demo_staff(database)
    yield database
    st.cache_resource.clear()
    orders_db.forget_databases()


@pytest.fixture
def browser(monkeypatch) -> FakeBrowser:
    return use_fake_browser(monkeypatch, FakeBrowser())


def open_as(db, browser: FakeBrowser, email: str, **params) -> AppTest:
    browser.sign_in(db, email)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    at.switch_page(PAGE)
    at.query_params.update({k: str(v) for k, v in params.items()})
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    parts = []
    for kind in ("markdown", "caption", "success", "error", "warning", "info", "title", "subheader"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def charge_with_no_order(db) -> str:
    gateway = SimulatedGateway(db)
    charge = gateway.create_payment(
        amount=1234, currency="usd", reference="", idempotency_key=str(uuid.uuid4())
    )
    gateway.confirm_payment(charge.payment_id, token="tok_visa", idempotency_key=str(uuid.uuid4()))
    return charge.payment_id


def test_an_analyst_starts_a_reconciliation_and_sees_its_report(db, browser):
    stray = charge_with_no_order(db)
    at = open_as(db, browser, ANALYST)
    assert "No reconciliation yet" in texts(at)
    today = utcnow().date()

    at.date_input(key="reconcile_period").set_value((today, today))
    at.button[0].click().run()  # the form's submit button ("Start reconciliation")
    assert not at.exception, [e.value for e in at.exception]

    run_id = int(at.query_params["run"][0])
    run = reconciliation_jobs.read_run(db, run_id)
    assert (run.status, run.actor, run.period.first, run.period.last) == ("queued", ANALYST, today, today)
    assert "Queued" in texts(at)  # the status badge
    assert [(p.proto.value, p.proto.text) for p in at.get("progress")] == [(0, "Queued")]

    run_job_here(db, run.job_id)
    at.run()
    assert not at.exception, [e.value for e in at.exception]

    shown = metrics(at)
    assert shown["Charges with no order"] == "1"
    assert shown["Refunds unknown to us"] == "0"
    table = next(d.value for d in at.dataframe if "Gateway id" in d.value.columns)
    assert list(table["Gateway id"]) == [stray]
    assert list(table["Theirs"]) == ["$12.34 succeeded"]
    assert at.get("download_button"), "the report offers its CSV"
    csv = reconciliation_jobs.run_csv(db, find_staff(db, ANALYST).as_actor(), run_id)
    assert stray.encode() in csv

    again = open_as(db, browser, ANALYST, run=run_id)  # a new session reads the stored report
    assert metrics(again)["Charges with no order"] == "1"


def test_a_clean_period_says_the_books_agree(db, browser):
    analyst = find_staff(db, ANALYST).as_actor()
    today = utcnow().date()
    from orders_core.reconciliation import Period

    run = reconciliation_jobs.start_reconciliation(db, analyst, Period(today, today))
    run_job_here(db, run.job_id)

    at = open_as(db, browser, SUPPORT, run=run.id)

    assert "No mismatches" in texts(at)
    assert set(metrics(at).values()) == {"0"}


@pytest.mark.parametrize("email", [ANALYST, SUPPORT, OPS, ADMIN])
def test_the_page_is_in_the_menu_of_analysts_and_every_role_above(db, browser, email):
    at = open_as(db, browser, email)

    assert not any("does not allow" in w.value for w in at.warning)
    assert at.date_input(key="reconcile_period") is not None
