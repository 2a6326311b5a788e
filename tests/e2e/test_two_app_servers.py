"""Two app servers on one PostgreSQL database, as behind a load balancer: sessions live
in the database, so a session made through one server is valid on the other, and a
revocation on one takes effect on the other at the next request or click.

Both servers are `streamlit run app.py` on different ports with their own data
directories. The HTTP test speaks to them as one browser would (one cookie jar:
browsers share localhost's cookies across ports); the browser test has a staff member
in a tab on server A while an admin in another browser deactivates them on server B.
Screenshots go to tests/artifacts/screenshots/two_servers_*.png."""

from __future__ import annotations

import http.cookiejar
import json
import re
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import select

from orders_core import db as orders_db
from orders_core import demo
from orders_core.schema import staff, staff_audit, staff_sessions
from orders_core.sessions import token_hash
from tests.support.app_server import (
    app_server,
    choose,
    chromium,
    first_order,
    new_page,
    shot,
    sign_in,
    wait_idle,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

PASSWORD = demo.DEMO_PASSWORD
ADMIN, OPS, SUPPORT = "admin@ordersdesk.test", "ops@ordersdesk.test", "support@ordersdesk.test"


@pytest.fixture
def two_servers(postgres_database_url: str, tmp_path: Path):
    """(base URL of A, base URL of B, Database): two servers, one seeded PostgreSQL database."""
    demo.seed(orders_db.open_database(postgres_database_url), orders=30, random_seed=11)
    orders_db.forget_databases()
    with (
        app_server(postgres_database_url, tmp_path / "server-a") as a,
        app_server(postgres_database_url, tmp_path / "server-b") as b,
    ):
        assert a != b
        yield a, b, orders_db.open_database(postgres_database_url)
    orders_db.forget_databases()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Client:
    """One browser's cookie jar, redirects not followed (we look at them)."""

    def __init__(self):
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), NoRedirect)

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.jar if c.name == name), None)

    def request(
        self,
        method: str,
        url: str,
        form: dict | None = None,
        *,
        origin: str | None = None,
        cookie: str | None = None,
    ):
        """(status, Location, body). `cookie` sends that Cookie header instead of the jar's."""
        body = urllib.parse.urlencode(form).encode() if form is not None else None
        headers = {"Origin": origin} if origin else {}
        if form is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        opener = self.opener
        if cookie is not None:
            request.add_header("Cookie", cookie)
            opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(request, timeout=15) as response:
                return response.status, response.headers.get("location", ""), response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get("location", ""), error.read().decode()


def session_row(db, token: str):
    with db.read() as conn:
        return conn.execute(
            select(staff_sessions).where(staff_sessions.c.token_hash == token_hash(token))
        ).one()


def test_both_servers_are_ready_and_a_session_made_on_one_is_valid_and_signed_out_on_the_other(two_servers):
    a, b, db = two_servers
    for base in (a, b):
        status, _, body = Client().request("GET", f"{base}/readyz")
        report = json.loads(body)
        assert status == 200 and report["status"] == "ready", report
        migrations = report["checks"]["migrations"]
        assert migrations["ok"] and migrations["current"] == migrations["head"]

    browser = Client()
    status, _, _ = browser.request("GET", f"{a}/sign-in")
    assert status == 200
    csrf = browser.cookie("od_csrf")
    status, location, _ = browser.request(
        "POST",
        f"{a}/sign-in",
        {"csrf": csrf, "email": OPS, "password": PASSWORD, "next": "/?status=paid"},
        origin=a,
    )
    assert (status, location) == (303, "/?status=paid")
    token = browser.cookie("od_session")
    assert token and session_row(db, token).revoked_at is None
    old_cookie = f"od_session={token}"

    status, location, _ = browser.request("GET", f"{b}/?status=paid")  # the jar: same browser
    assert status == 200, location
    status, location, _ = browser.request("GET", f"{b}/sign-in?next=/jobs")
    assert (status, location) == (303, "/jobs")  # B knows this browser is signed in
    assert browser.cookie("od_csrf") == csrf  # one od_csrf per browser, whichever server set it

    status, location, _ = browser.request("POST", f"{b}/sign-out", {"csrf": csrf}, origin=b)
    assert (status, location) == (303, "/sign-in")
    row = session_row(db, token)
    assert row.revoked_at is not None and row.revoked_reason == "you signed out"
    with db.read() as conn:
        signed_out = conn.execute(
            select(staff_audit).where(staff_audit.c.event == "sign_out", staff_audit.c.subject_key == OPS)
        ).all()
    assert len(signed_out) == 1

    status, location, _ = Client().request("GET", f"{a}/", cookie=old_cookie)
    assert status == 303 and location.startswith("/sign-in")
    status, location, _ = Client().request("GET", f"{a}/?status=paid", cookie=old_cookie)
    assert status == 303 and location.startswith("/sign-in?next=")
    status, _, body = Client().request("GET", f"{a}/sign-in", cookie=old_cookie)
    assert status == 200 and "You are signed out." in body


@pytest.mark.browser
def test_a_deactivation_on_one_server_ends_a_tab_on_the_other_at_its_next_click(two_servers):
    a, b, db = two_servers
    number = first_order(db, "paid")
    with chromium() as browser:
        agent, admin = new_page(browser, width=1280, height=1000), new_page(browser, width=1280, height=1000)
        agent.goto(f"{a}/order?number={number}")
        sign_in(agent, SUPPORT, PASSWORD)
        agent.get_by_role("heading", name=f"Order {number}").first.wait_for()
        wait_idle(agent)
        token = next(c["value"] for c in agent.context.cookies() if c["name"] == "od_session")
        tab_b = agent.context.new_page()  # the same browser on server B: already signed in
        tab_b.set_default_timeout(20_000)
        tab_b.goto(f"{b}/jobs")
        tab_b.get_by_role("heading", name="Jobs").first.wait_for()
        assert tab_b.locator("#email").count() == 0
        shot(tab_b, "two_servers_01_session_from_a_valid_on_b")
        tab_b.close()
        shot(agent, "two_servers_02_agent_on_a")

        admin.goto(f"{b}/staff")
        sign_in(admin, ADMIN, PASSWORD)
        admin.get_by_role("heading", name="Staff").first.wait_for()
        choose(admin, "staff_pick", SUPPORT)
        wait_idle(admin)
        admin.locator(".st-key-staff_toggle_active button").click()
        admin.get_by_text(f"{SUPPORT} is deactivated; their sessions have ended.").wait_for()
        assert admin.url.startswith(b)
        shot(admin, "two_servers_03_admin_on_b_deactivated_support")

        agent.get_by_role("link", name="Jobs").first.click()  # the next click, on server A
        agent.get_by_text(
            re.compile(
                r"Your session has ended: your account was deactivated by "
                r"admin@\u2060?ordersdesk\.test"  # a word joiner keeps Markdown from linking it
            )
        ).wait_for()
        assert agent.url.startswith(a)
        shot(agent, "two_servers_04_agent_on_a_session_ended")
        row = session_row(db, token)
        assert row.revoked_reason == "your account was deactivated by admin@ordersdesk.test"
        with db.read() as conn:
            assert conn.execute(select(staff.c.active).where(staff.c.email_key == SUPPORT)).scalar() is False
        agent.context.close()
        admin.context.close()
