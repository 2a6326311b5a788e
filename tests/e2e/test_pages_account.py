"""My account and the Staff page's session tools, through the real entry point with
AppTest (a real session in a stand-in browser's cookie, tests/support/staff_browser.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import streamlit as st
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from orders_core import authentication, demo
from orders_core import db as orders_db
from orders_core.schema import staff_audit
from orders_core.staff import find_staff, reset_staff_password
from tests.support.staff_browser import FakeBrowser, use_fake_browser

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "streamlit_app.py")
TIMEOUT = 30
ADMIN, SUPPORT = "admin@ordersdesk.test", "support@ordersdesk.test"


@pytest.fixture
def db(sqlite_template, tmp_path, monkeypatch):
    path = tmp_path / "orders.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    monkeypatch.setenv("ORDERS_DATABASE_URL", url)
    monkeypatch.setenv("ORDERS_EMBEDDED_WORKER", "0")
    st.cache_resource.clear()
    database = orders_db.open_database(url)
    demo.seed(database, orders=5)
    yield database
    st.cache_resource.clear()
    orders_db.forget_databases()


@pytest.fixture
def browser(monkeypatch) -> FakeBrowser:
    return use_fake_browser(monkeypatch, FakeBrowser())


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def table_with(at: AppTest, column: str):
    [frame] = [d.value for d in at.dataframe if column in d.value.columns]
    return frame


def run_app(page: str | None = None) -> AppTest:
    at = ok(AppTest.from_file(APP, default_timeout=TIMEOUT).run())
    if page:
        at.switch_page(page)
        ok(at.run())
    return at


def test_a_temporary_password_must_be_replaced_before_any_page_opens(db, browser):
    reset_staff_password(db, find_staff(db, ADMIN).as_actor(), SUPPORT, "temporary-pw-1")
    browser.sign_in(db, SUPPORT, "temporary-pw-1")
    at = run_app()
    assert [t.value for t in at.title] == ["Choose your own password"]
    assert not at.dataframe and not at.metric  # no orders behind it
    at.text_input(key="first_password_current").input("temporary-pw-1")
    at.text_input(key="first_password_new").input("my-own-password")
    at.text_input(key="first_password_repeat").input("my-own-password")
    ok(at.button(key="first_password_submit").click().run())
    assert [t.value for t in at.title] == ["Orders"]
    assert not find_staff(db, SUPPORT).password_must_change
    assert authentication.sign_in_with_password(db, SUPPORT, "my-own-password")


def test_my_account_changes_the_password_and_ends_only_the_other_sessions(db, browser):
    elsewhere = authentication.sign_in_with_password(db, SUPPORT, demo.DEMO_PASSWORD).token
    browser.sign_in(db, SUPPORT)
    at = run_app("pages/account_page.py")
    assert [t.value for t in at.title] == ["My account"]
    sessions = table_with(at, "This browser")
    assert len(sessions) == 2 and list(sessions["This browser"]).count("✓") == 1
    at.text_input(key="own_password_current").input("not my password")
    at.text_input(key="own_password_new").input("brand-new-password")
    at.text_input(key="own_password_repeat").input("brand-new-password")
    ok(at.button(key="own_password_submit").click().run())
    assert any("current password is not right" in e.value for e in at.error)
    at.text_input(key="own_password_current").input(demo.DEMO_PASSWORD)
    at.text_input(key="own_password_new").input("brand-new-password")
    at.text_input(key="own_password_repeat").input("brand-new-password")
    ok(at.button(key="own_password_submit").click().run())
    assert any("Password changed" in s.value for s in at.success)
    assert isinstance(authentication.current_session(db, elsewhere), authentication.SessionEnded)
    assert [t.value for t in at.title] == ["My account"]  # this browser stays signed in


def test_an_admin_sees_a_persons_sessions_and_signs_them_out_everywhere(db, browser):
    theirs = authentication.sign_in_with_password(
        db,
        SUPPORT,
        demo.DEMO_PASSWORD,
        user_agent="Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0 Safari/537.36",
    ).token
    browser.sign_in(db, ADMIN)
    at = run_app("pages/staff_page.py")
    at.selectbox(key="staff_pick").set_value(SUPPORT)
    ok(at.run())
    table = table_with(at, "Browser")
    assert list(table["Browser"]) == ["Chrome 156 on Linux"]
    ok(at.button(key="staff_sign_out_everywhere").click().run())
    assert any(
        f"Signed {SUPPORT} out of 1 session" in s.value.replace("\\", "").replace("`", "") for s in at.success
    )
    # the email is a code span: Markdown would make a bare (even escaped) email a mailto link
    assert any(f"`{SUPPORT}`" in s.value for s in at.success)
    assert isinstance(authentication.current_session(db, theirs), authentication.SessionEnded)
    audit = table_with(at, "Event")
    assert "Sessions revoked" in set(audit["Event"]) and "Sign in" in set(audit["Event"])
    with db.read() as conn:
        assert (
            conn.execute(select(staff_audit.c.id).where(staff_audit.c.event == "sessions_revoked")).first()
            is not None
        )
