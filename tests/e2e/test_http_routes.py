"""The app's own HTTP routes on the real server (`streamlit run app.py`), spoken to as a
browser or a load balancer would, without a browser: health checks, the sign-in and
sign-out forms (cross-site request forgery, size limits, cookies), and the page gate.
"""

from __future__ import annotations

import http.cookiejar
import json
import re
import shutil
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import select

from orders_core import db as orders_db
from orders_core import demo
from orders_core.schema import staff_sessions
from tests.support.app_server import app_server

pytestmark = [pytest.mark.slow]

PASSWORD = demo.DEMO_PASSWORD


@pytest.fixture(scope="module")
def site(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory):
    data_dir = tmp_path_factory.mktemp("routes-data")
    path = data_dir / "orders.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    demo.seed(orders_db.open_database(url), orders=20, random_seed=3)
    orders_db.forget_databases()
    with app_server(url, data_dir, ORDERS_EMBEDDED_WORKER="1") as base:
        yield base, orders_db.open_database(url)
    orders_db.forget_databases()


class Browser:
    """A cookie jar and a client that does not follow redirects (we look at them)."""

    def __init__(self, base: str):
        self.base = base
        self.jar = http.cookiejar.CookieJar()

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), NoRedirect)

    def request(self, method: str, path: str, data: dict | bytes | None = None, headers=None):
        body = urllib.parse.urlencode(data).encode() if isinstance(data, dict) else data
        request = urllib.request.Request(
            self.base + path, data=body, method=method, headers={"Origin": self.base, **(headers or {})}
        )
        if isinstance(data, dict):
            request.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with self.opener.open(request, timeout=15) as response:
                return response.status, dict(response.headers), response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read().decode()

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.jar if c.name == name), None)

    def sign_in(self, email: str, password: str = PASSWORD, next_path: str = "/", **extra):
        self.request("GET", "/sign-in")
        return self.request(
            "POST",
            "/sign-in",
            {
                "csrf": self.cookie("od_csrf"),
                "email": email,
                "password": password,
                "next": next_path,
                **extra,
            },
        )


def test_health_and_readiness_answer_json_for_load_balancers(site):
    base, _ = site
    status, headers, body = Browser(base).request("GET", "/healthz")
    assert status == 200 and json.loads(body) == {"status": "ok"}
    status, _, body = Browser(base).request("GET", "/readyz")
    report = json.loads(body)
    assert status == 200 and report["status"] == "ready"
    assert report["checks"]["database"]["ok"] and report["checks"]["migrations"]["ok"]
    assert report["checks"]["migrations"]["current"] == report["checks"]["migrations"]["head"]
    assert report["checks"]["embedded_worker"]["ok"]


def test_a_signed_out_page_load_goes_to_sign_in_with_the_page_to_come_back_to(site):
    base, _ = site
    browser = Browser(base)
    status, headers, _ = browser.request("GET", "/jobs?job=3")
    assert status == 303 and headers["location"] == "/sign-in?next=%2Fjobs%3Fjob%3D3"
    status, headers, _ = browser.request("GET", "/orders?status=paid")
    assert status == 302 and headers["location"] == "/?status=paid"  # the list lives at /
    assert browser.request("GET", "/checkout")[0] == 200  # the demo checkout is public
    assert browser.request("GET", "/_stcore/health")[0] == 200


def test_signing_in_sets_an_http_only_lax_session_cookie_and_goes_on(site):
    base, db = site
    browser = Browser(base)
    status, headers, _ = browser.sign_in("ops@ordersdesk.test", next_path="/order?number=ORD-000002")
    assert status == 303 and headers["location"] == "/order?number=ORD-000002"
    cookie = headers["set-cookie"]
    assert re.search(r"od_session=[\w-]{43,};", cookie)
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http here
    assert browser.request("GET", "/order?number=ORD-000002")[0] == 200
    with db.read() as conn:
        hashes = set(conn.execute(select(staff_sessions.c.token_hash)).scalars())
    assert browser.cookie("od_session") not in hashes  # only its hash is stored


def test_behind_https_the_session_cookie_is_secure(site):
    base, _ = site
    browser = Browser(base)
    browser.request("GET", "/sign-in")
    status, headers, _ = browser.request(
        "POST",
        "/sign-in",
        {"csrf": browser.cookie("od_csrf"), "email": "ops@ordersdesk.test", "password": PASSWORD},
        headers={"X-Forwarded-Proto": "https"},
    )
    assert status == 303 and "Secure" in headers["set-cookie"]


def test_a_form_without_this_browsers_csrf_value_or_from_another_site_is_refused(site):
    base, _ = site
    browser = Browser(base)
    browser.request("GET", "/sign-in")
    form = {"email": "ops@ordersdesk.test", "password": PASSWORD}
    assert browser.request("POST", "/sign-in", {**form, "csrf": "guessed"})[0] == 403
    assert browser.request("POST", "/sign-in", form)[0] == 403
    assert (
        browser.request(
            "POST",
            "/sign-in",
            {**form, "csrf": browser.cookie("od_csrf")},
            headers={"Origin": "https://evil.example"},
        )[0]
        == 403
    )
    assert browser.cookie("od_session") is None
    signed_in = Browser(base)
    signed_in.sign_in("ops@ordersdesk.test")
    assert signed_in.request("POST", "/sign-out", {"csrf": "guessed"})[0] == 403
    assert signed_in.request("GET", "/")[0] == 200  # still signed in


def test_oversized_or_malformed_forms_are_refused_before_they_are_read(site):
    base, _ = site
    browser = Browser(base)
    browser.request("GET", "/sign-in")
    big = {"csrf": browser.cookie("od_csrf"), "email": "x" * 20_000, "password": "y"}
    assert browser.request("POST", "/sign-in", big)[0] == 400
    assert (
        browser.request("POST", "/sign-in", b'{"email": "a"}', headers={"Content-Type": "application/json"})[
            0
        ]
        == 400
    )
    assert (
        browser.request(
            "POST",
            "/sign-in",
            b"\xff\xfe=\xff",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )[0]
        == 400
    )


def test_a_wrong_password_re_shows_the_form_with_the_email_kept_and_an_escaped_message(site):
    base, _ = site
    browser = Browser(base)
    status, _, body = browser.sign_in("<script>alert(1)</script>@example.test", "wrong")
    assert status == 401
    assert "Unknown email or wrong password." in body
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;" in body


def test_sign_out_ends_the_session_and_says_so_once(site):
    base, _ = site
    browser = Browser(base)
    browser.sign_in("support@ordersdesk.test")
    old = browser.cookie("od_session")
    status, headers, _ = browser.request("POST", "/sign-out", {"csrf": browser.cookie("od_csrf")})
    assert status == 303 and headers["location"] == "/sign-in"
    status, _, body = browser.request("GET", "/sign-in")
    assert status == 200 and "You are signed out." in body
    assert browser.cookie("od_session") is None  # the sign-in page cleared the dead cookie
    status, headers, _ = Browser(base).request("GET", "/", headers={"Cookie": f"od_session={old}"})
    assert status == 303 and headers["location"].startswith("/sign-in")


def test_a_sign_in_never_sends_the_browser_off_site(site):
    base, _ = site
    status, headers, _ = Browser(base).sign_in("ops@ordersdesk.test", next_path="//evil.example/x")
    assert status == 303 and headers["location"] == "/"
    _, _, form = Browser(base).request("GET", "/sign-in?next=https://evil.example")
    assert 'name=next value="/"' in form
