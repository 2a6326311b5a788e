"""Staff sessions in Debian's Chromium against the app as the README starts it
(`streamlit run app.py`): reloads, new tabs and links keep a signed-in person where
they were; a signed-out visit signs in and lands on the page asked for; a colleague
deactivated or demoted in another browser loses that access at their next click; a
copied cookie dies with its sign-out; repeated failures lock the sign-in.

Each person is a browser context of their own (their own cookies). Screenshots of
each state go to tests/artifacts/screenshots/sessions_*.png."""

from __future__ import annotations

import re
import shutil
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import select

from orders_core import db as orders_db
from orders_core import demo
from orders_core.schema import orders, refunds, staff
from tests.support.app_server import (
    app_server,
    choose,
    first_order,
    heading,
    session_cookie,
    shot,
    sign_in,
    wait_idle,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = demo.DEMO_PASSWORD
ADMIN, OPS, SUPPORT = "admin@ordersdesk.test", "ops@ordersdesk.test", "support@ordersdesk.test"


@pytest.fixture(scope="module")
def site(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory):
    """(base URL, database, server log directory) on a seeded copy, one server for the module."""
    data_dir = tmp_path_factory.mktemp("sessions-data")
    path = data_dir / "orders.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    demo.seed(orders_db.open_database(url), orders=80, random_seed=9)
    orders_db.forget_databases()
    with app_server(url, data_dir) as base:
        yield base, orders_db.open_database(url), data_dir
    orders_db.forget_databases()


def order_row(db, number: str):
    with db.read() as conn:
        return conn.execute(select(orders).where(orders.c.number == number)).one()


def get(url: str, cookie: str | None = None) -> tuple[int, str]:
    """(status, Location) of a GET that does not follow redirects."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=10) as response:
            return response.status, response.headers.get("location", "")
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("location", "")


def test_reload_new_tab_and_links_keep_a_signed_in_person_where_they_were(site, person):
    base, db, _ = site
    number = first_order(db, "fulfilled")
    page = person()
    page.goto(f"{base}/orders?status=paid&sort=-total_amount")
    assert page.url.startswith(f"{base}/sign-in?next=")
    shot(page, "sessions_01_sign_in_page")
    sign_in(page, OPS, PASSWORD)
    page.wait_for_url(re.compile(r"status=paid"))
    page.get_by_text(re.compile(r"^Select all \d+ matching orders$")).wait_for()
    shot(page, "sessions_02_orders_paid_after_sign_in")

    page.reload()
    page.get_by_text(re.compile(r"^Select all \d+ matching orders$")).wait_for()
    assert "status=paid" in page.url and "sort=-total_amount" in page.url
    assert page.locator("#email").count() == 0
    shot(page, "sessions_03_after_reload")

    tab = page.context.new_page()  # a link opened in a new tab: same browser, same session
    tab.goto(f"{base}/order?number={number}")
    heading(tab, f"Order {number}").wait_for()
    wait_idle(tab)
    assert tab.get_by_text("Page not found").count() == 0
    shot(tab, "sessions_04_order_in_new_tab")

    for path, title in (("/jobs?job=1", "Jobs"), ("/analytics?status=paid", "Key figures")):
        tab.goto(base + path)
        heading(tab, title).wait_for()
        assert tab.get_by_text("Page not found").count() == 0
    tab.close()


def test_a_signed_out_visit_to_an_order_signs_in_and_lands_on_that_order(site, person):
    base, db, data_dir = site
    number = first_order(db, "paid")
    page = person()
    page.goto(f"{base}/order?number={number}")
    assert urllib.parse.unquote(page.url).endswith(f"/sign-in?next=/order?number={number}")
    sign_in(page, SUPPORT, PASSWORD)
    heading(page, f"Order {number}").wait_for()
    assert page.url == f"{base}/order?number={number}"
    wait_idle(page)
    assert page.get_by_text("Page not found").count() == 0
    shot(page, "sessions_05_order_after_sign_in")
    token = session_cookie(page)
    assert token["httpOnly"] and token["sameSite"] == "Lax" and token["path"] == "/"
    logs = "".join(p.read_text(errors="replace") for p in data_dir.glob("streamlit-*.log"))
    assert token["value"] not in logs and PASSWORD not in logs


def test_no_open_redirect_after_sign_in(site, person):
    base, _, _ = site
    page = person()
    page.goto(f"{base}/sign-in?next=//evil.example/steal")
    sign_in(page, OPS, PASSWORD)
    page.wait_for_url(re.compile(re.escape(base) + r"/(\?.*)?$"))
    assert urllib.parse.urlsplit(page.url).netloc == urllib.parse.urlsplit(base).netloc


def test_a_colleague_deactivated_in_another_browser_refunds_nothing_at_the_next_click(site, person):
    base, db, _ = site
    number = first_order(db, "paid")
    agent, admin = person(), person()
    agent.goto(f"{base}/order?number={number}")
    sign_in(agent, SUPPORT, PASSWORD)
    heading(agent, f"Order {number}").wait_for()
    agent.locator(".st-key-order_action_cancel button").click()
    agent.locator(".st-key-order_move_confirm button").wait_for()
    shot(agent, "sessions_06_agent_about_to_cancel")

    admin.goto(f"{base}/staff")
    sign_in(admin, ADMIN, PASSWORD)
    heading(admin, "Staff").wait_for()
    choose(admin, "staff_pick", SUPPORT)
    wait_idle(admin)
    admin.locator(".st-key-staff_toggle_active button").click()
    admin.get_by_text(f"{SUPPORT} is deactivated; their sessions have ended.").wait_for()
    shot(admin, "sessions_07_admin_deactivated_support")

    agent.locator(".st-key-order_move_confirm button").click()
    agent.get_by_text(
        re.compile(
            r"Your session has ended: your account was deactivated by "
            r"admin@\u2060?ordersdesk\.test"  # a word joiner keeps Markdown from linking it
        )
    ).wait_for()
    agent.locator("form.od-sign-in").wait_for()  # and the sign-in form
    assert agent.locator('a[href^="mailto:"]').count() == 0  # the admin's email is plain text
    shot(agent, "sessions_08_agent_session_ended")
    row = order_row(db, number)
    assert (row.status, row.refunded_amount) == ("paid", 0)
    with db.read() as conn:
        assert conn.execute(select(refunds).where(refunds.c.order_id == row.id)).all() == []
        assert conn.execute(select(staff.c.active).where(staff.c.email_key == SUPPORT)).scalar() is False

    agent.locator("#od-email").fill(SUPPORT)  # the form in the page signs in as the page does
    agent.locator("#od-password").fill(PASSWORD)
    agent.locator("form.od-sign-in button").click()
    agent.get_by_text(re.compile(r"is deactivated; ask an admin")).wait_for()
    shot(agent, "sessions_09_deactivated_cannot_sign_in")


def test_a_demoted_colleague_is_neither_offered_nor_allowed_fulfil(site, person):
    base, db, _ = site
    number = first_order(db, "paid")
    ops, admin = person(), person()
    ops.goto(f"{base}/order?number={number}")
    sign_in(ops, OPS, PASSWORD)
    heading(ops, f"Order {number}").wait_for()
    ops.locator(".st-key-order_action_fulfill button").wait_for()
    shot(ops, "sessions_10_ops_sees_fulfil")

    admin.goto(f"{base}/staff")
    sign_in(admin, ADMIN, PASSWORD)
    heading(admin, "Staff").wait_for()
    choose(admin, "staff_pick", OPS)
    wait_idle(admin)
    with db.read() as conn:
        ops_id = conn.execute(select(staff.c.id).where(staff.c.email_key == OPS)).scalar_one()
    choose(admin, f"staff_role_{ops_id}", "Analyst")
    admin.locator(".st-key-staff_save_role button").click()
    admin.get_by_text(f"{OPS} is now Analyst; their sessions have ended.").wait_for()

    ops.locator(".st-key-order_action_fulfill button").click()
    ops.get_by_text(re.compile(r"Your session has ended: your role was changed to Analyst")).wait_for()
    assert order_row(db, number).status == "paid"
    ops.goto(f"{base}/order?number={number}")  # signs in again, now an analyst
    sign_in(ops, OPS, PASSWORD)
    heading(ops, f"Order {number}").wait_for()
    wait_idle(ops)
    assert ops.locator(".st-key-order_action_fulfill").count() == 0
    ops.get_by_text(re.compile(r"· Analyst")).first.wait_for()
    shot(ops, "sessions_11_demoted_no_fulfil")


def test_a_cookie_copied_before_sign_out_is_refused_after_it(site, person):
    base, _, _ = site
    page = person()
    page.goto(f"{base}/orders")
    sign_in(page, "analyst@ordersdesk.test", PASSWORD)
    page.get_by_text(re.compile(r"^Select all \d+ matching orders$")).wait_for()
    copy = f"od_session={session_cookie(page)['value']}"
    assert get(f"{base}/?status=paid", copy)[0] == 200
    page.locator("#od-sign-out").click()
    page.wait_for_url(re.compile(r"/sign-in"))
    page.locator("#notice").filter(has_text="You are signed out.").wait_for()
    shot(page, "sessions_12_signed_out")
    status, location = get(f"{base}/?status=paid", copy)
    assert status == 303 and location.startswith("/sign-in")

    thief = person()  # the copy in another browser gets the sign-in page, with why
    thief.context.add_cookies([{"name": "od_session", "value": copy.split("=", 1)[1], "url": base}])
    thief.goto(f"{base}/sign-in")
    thief.locator("#notice").filter(has_text="You are signed out.").wait_for()


def test_five_wrong_passwords_lock_the_sign_in_for_a_while(site, person):
    base, _, _ = site
    page = person()
    page.goto(f"{base}/sign-in")
    email = "someone@ordersdesk.test"  # no such account: it is locked all the same
    for attempt in range(5):
        sign_in(page, email, f"wrong-{attempt}")
        page.locator("#error").filter(has_text="Unknown email or wrong password.").wait_for()
    sign_in(page, email, PASSWORD)
    page.locator("#error").filter(
        has_text=re.compile(r"Too many failed sign-ins.*Try again after")
    ).wait_for()
    assert page.locator("#email").input_value() == email
    shot(page, "sessions_13_locked_out")
