"""Single sign-on in Debian's Chromium against the app as the README starts it
(`streamlit run app.py`) and a real OpenID Connect provider on loopback
(oidc-provider-mock): Streamlit's own /auth/login and /oauth2callback, then the page
gate turning Streamlit's identity cookie into an Orders Desk session.

Proven here:
- a signed-out visit to an order goes through the provider and lands on that order,
  signed in with the role Orders Desk gives (not the provider); the browser keeps only
  our HttpOnly od_session, never Streamlit's _streamlit_user cookies; the database
  has the session (method "sso:keycloak") and the audit log its sign-in;
- an identity with no staff account, and one whose email the provider has not
  verified (even for an existing account), are refused on /sign-in with the reason,
  no session, and a failed sign-in in the audit log;
- an SSO session is revoked like a password one: deactivating the person ends their
  open tab at its next click;
- with ORDERS_PASSWORD_SIGN_IN=0 the sign-in page offers single sign-on only, a
  posted password is refused (401), and single sign-on still signs in.

The password-off test comes first: it starts (and stops) its own server before the
module's server starts, so at most one app server runs at a time. Screenshots of each
state go to tests/artifacts/screenshots/sso_*.png."""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from orders_core import db as orders_db
from orders_core import demo
from orders_core.schema import staff, staff_audit, staff_sessions
from orders_core.sessions import token_hash
from orders_core.staff import find_staff, set_staff_active
from tests.support.app_server import (
    app_server,
    first_order,
    free_port,
    heading,
    http_status,
    shot,
    wait_idle,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

OIDC_PROVIDER = Path(sys.executable).parent / "oidc-provider-mock"  # installed beside our Python
PROVIDER_START_SECONDS = 30
ADMIN, OPS, SUPPORT = "admin@ordersdesk.test", "ops@ordersdesk.test", "support@ordersdesk.test"
ANALYST = "analyst@ordersdesk.test"  # a staff account, but not a predefined provider user
STRANGER = "stranger@example.test"  # verified by the provider, no staff account
PROVIDER_USERS = [
    {"sub": OPS, "email": OPS, "email_verified": True, "name": "Priya"},
    {"sub": SUPPORT, "email": SUPPORT, "email_verified": True, "name": "Sam"},
    {"sub": STRANGER, "email": STRANGER, "email_verified": True, "name": "Stranger"},
]


# --- the OpenID provider and the app's secrets ------------------------------------


@contextlib.contextmanager
def oidc_provider(log_path: Path) -> Iterator[str]:
    """oidc-provider-mock on a free loopback port; yields its issuer URL."""
    port = free_port()
    command = [str(OIDC_PROVIDER), "--host", "127.0.0.1", "--port", str(port)]
    for claims in PROVIDER_USERS:
        command += ["--user-claims", json.dumps(claims)]
    log = open(log_path, "wb")  # noqa: SIM115 - the child process writes it
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    issuer = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + PROVIDER_START_SECONDS
        while http_status(f"{issuer}/.well-known/openid-configuration") != 200:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "the OpenID provider did not start:\n" + log_path.read_text(errors="replace")[-3000:]
                )
            time.sleep(0.25)
        yield issuer
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
        log.close()


def write_secrets(directory: Path, app_port: int, issuer: str) -> Path:
    """A secrets.toml for the app on `app_port` (outside the repository)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"secrets-{app_port}.toml"
    path.write_text(
        "[auth]\n"
        f'redirect_uri = "http://localhost:{app_port}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_hex(32)}"\n'
        "[auth.keycloak]\n"
        'client_id = "orders-desk"\n'
        'client_secret = "not-checked"\n'
        f'server_metadata_url = "{issuer}/.well-known/openid-configuration"\n'
    )
    return path


@contextlib.contextmanager
def sso_app(url: str, data_dir: Path, issuer: str, **environment: str) -> Iterator[str]:
    port = free_port()
    secrets_file = write_secrets(data_dir / "secrets", port, issuer)
    with app_server(
        url, data_dir, port=port, STREAMLIT_SECRETS_FILES=str(secrets_file), **environment
    ) as base:
        yield base


# --- fixtures -----------------------------------------------------------------------


@dataclass
class Site:
    base: str
    db: orders_db.Database
    data_dir: Path


@pytest.fixture(scope="module")
def seeded(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory):
    """(database URL, data directory) of a seeded SQLite copy shared by the module."""
    data_dir = tmp_path_factory.mktemp("sso-data")
    path = data_dir / "orders.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    demo.seed(orders_db.open_database(url), orders=40, random_seed=5)
    orders_db.forget_databases()
    yield url, data_dir
    orders_db.forget_databases()


@pytest.fixture(scope="module")
def provider(seeded) -> Iterator[str]:
    _, data_dir = seeded
    with oidc_provider(data_dir / "oidc-provider.log") as issuer:
        yield issuer


@pytest.fixture(scope="module")
def site(seeded, provider) -> Iterator[Site]:
    url, data_dir = seeded
    with sso_app(url, data_dir, provider) as base:
        yield Site(base, orders_db.open_database(url), data_dir)


# --- helpers ------------------------------------------------------------------------


def cookie_names(page) -> set[str]:
    return {c["name"] for c in page.context.cookies()}


def sso_sign_in(page, sub: str, screenshot: str | None = None) -> None:
    """From our sign-in page: the SSO button, then the provider's form as `sub`."""
    button = page.locator("#sso-keycloak")
    button.wait_for()
    assert button.inner_text().strip() == "Sign in with Keycloak"
    button.click()
    page.locator('input[name="sub"]').wait_for()
    assert page.url.startswith("http://127.0.0.1:")  # on the provider now
    page.locator('input[name="sub"]').fill(sub)
    if screenshot:
        shot(page, screenshot)
    with page.expect_navigation():
        page.get_by_role("button", name="Authorize", exact=True).click()


def audit_rows(db, subject: str) -> list:
    with db.read() as conn:
        return conn.execute(
            select(staff_audit)
            .where(staff_audit.c.subject_key == subject, staff_audit.c.event == "sign_in")
            .order_by(staff_audit.c.id)
        ).all()


def session_row(db, token: str):
    with db.read() as conn:
        return conn.execute(
            select(staff_sessions, staff.c.email_key)
            .join(staff, staff.c.id == staff_sessions.c.staff_id)
            .where(staff_sessions.c.token_hash == token_hash(token))
        ).one_or_none()


def sessions_of(db, email: str) -> list:
    with db.read() as conn:
        return conn.execute(
            select(staff_sessions)
            .join(staff, staff.c.id == staff_sessions.c.staff_id)
            .where(staff.c.email_key == email)
        ).all()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def call(opener, method: str, url: str, form: dict | None = None, headers: dict | None = None):
    """(status, headers, body) of one request that does not follow redirects."""
    body = urllib.parse.urlencode(form).encode() if form is not None else None
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    if form is not None:
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with opener.open(request, timeout=15) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


# --- tests --------------------------------------------------------------------------


def test_with_password_sign_in_off_only_single_sign_on_is_offered_and_it_still_works(
    seeded, provider, person
):
    url, data_dir = seeded
    db = orders_db.open_database(url)
    with sso_app(url, data_dir, provider, ORDERS_PASSWORD_SIGN_IN="0") as base:
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
        status, _, page_html = call(opener, "GET", f"{base}/sign-in")
        assert status == 200
        assert "id=email" not in page_html and "name=password" not in page_html
        assert 'id="sso-keycloak"' in page_html and "Sign in with Keycloak" in page_html
        csrf = next(c.value for c in jar if c.name == "od_csrf")
        before = len(sessions_of(db, OPS))
        status, headers, body = call(
            opener,
            "POST",
            f"{base}/sign-in",
            {"csrf": csrf, "email": OPS, "password": demo.DEMO_PASSWORD, "next": "/"},
            {"Origin": base},
        )
        assert status == 401 and "turned off" in body
        assert "od_session" not in " ".join(headers.get_all("set-cookie") or [])
        assert len(sessions_of(db, OPS)) == before

        page = person()
        page.goto(f"{base}/?status=paid")
        page.wait_for_url(re.compile(re.escape(f"{base}/sign-in")))
        page.locator("#sso-keycloak").wait_for()
        assert page.locator("#email").count() == 0 and page.locator("#password").count() == 0
        shot(page, "sso_01_password_off_sign_in_page")
        sso_sign_in(page, OPS)
        page.wait_for_url(f"{base}/?status=paid")
        page.get_by_text(re.compile(r"^Select all \d+ matching orders$")).wait_for()
        page.get_by_text(re.compile(r"· Ops")).first.wait_for()
        shot(page, "sso_02_password_off_signed_in_by_sso")
        token = next(c["value"] for c in page.context.cookies() if c["name"] == "od_session")
        assert session_row(db, token).method == "sso:keycloak"


def test_a_signed_out_visit_to_an_order_signs_in_by_sso_and_lands_on_that_order(site, person):
    number = first_order(site.db, "paid")
    page = person()
    page.goto(f"{site.base}/order?number={number}")
    assert urllib.parse.unquote(page.url).endswith(f"/sign-in?next=/order?number={number}")
    page.locator("#sso-keycloak").wait_for()
    assert page.locator("#email").count() == 1  # password sign-in stays on beside it
    shot(page, "sso_03_sign_in_page_with_sso")
    sso_sign_in(page, OPS, screenshot="sso_04_provider_form")

    heading(page, f"Order {number}").wait_for()
    assert page.url == f"{site.base}/order?number={number}"
    wait_idle(page)
    assert page.get_by_text("Page not found").count() == 0
    page.locator('[data-testid="stSidebar"]').get_by_text(re.compile(r"· Ops")).first.wait_for()
    shot(page, "sso_05_order_after_sso")

    cookies = {c["name"]: c for c in page.context.cookies()}
    token = cookies["od_session"]
    assert token["httpOnly"] and token["sameSite"] == "Lax" and token["path"] == "/"
    assert not [name for name in cookies if name.startswith("_streamlit_user")]
    assert "od_next" not in cookies
    row = session_row(site.db, token["value"])
    assert row is not None and row.email_key == OPS
    assert row.method == "sso:keycloak" and row.revoked_at is None
    signed_in = [r for r in audit_rows(site.db, OPS) if r.success]
    assert signed_in and signed_in[-1].detail == "sso:keycloak" and signed_in[-1].actor == OPS
    logs = "".join(p.read_text(errors="replace") for p in site.data_dir.glob("streamlit-*.log"))
    assert token["value"] not in logs

    page.reload()  # our session, not Streamlit's identity cookie, keeps them signed in
    heading(page, f"Order {number}").wait_for()
    assert page.locator("#sso-keycloak").count() == 0


def test_an_identity_without_a_staff_account_is_refused(site, person):
    before = len(audit_rows(site.db, STRANGER))
    page = person()
    page.goto(f"{site.base}/jobs")
    sso_sign_in(page, STRANGER)
    page.wait_for_url(f"{site.base}/sign-in")
    error = page.locator("#error")
    error.filter(has_text="has no Orders Desk staff account").wait_for()
    assert STRANGER in error.inner_text()
    shot(page, "sso_06_stranger_refused")
    names = cookie_names(page)
    assert "od_session" not in names and not [n for n in names if n.startswith("_streamlit_user")]
    assert "od_flash" not in names  # the reason is said once
    rows = audit_rows(site.db, STRANGER)
    assert len(rows) == before + 1
    assert rows[-1].success is False and rows[-1].detail == "sso:keycloak: no staff account"

    page.goto(f"{site.base}/jobs")  # still signed out
    page.wait_for_url(re.compile(re.escape(f"{site.base}/sign-in")))
    assert page.locator("#error").count() == 0


def test_an_identity_whose_email_is_not_verified_is_refused_even_for_a_staff_account(site, person):
    before_sessions = len(sessions_of(site.db, ANALYST))
    page = person()
    page.goto(f"{site.base}/")
    sso_sign_in(page, ANALYST)  # not predefined: the provider vouches for no verification
    page.wait_for_url(f"{site.base}/sign-in")
    page.locator("#error").filter(has_text="has not verified").wait_for()
    assert ANALYST in page.locator("#error").inner_text()
    shot(page, "sso_07_unverified_refused")
    assert "od_session" not in cookie_names(page)
    assert len(sessions_of(site.db, ANALYST)) == before_sessions
    rows = audit_rows(site.db, ANALYST)
    assert rows and rows[-1].success is False
    assert rows[-1].detail == "sso:keycloak: email not verified"


def test_an_sso_session_ends_at_the_next_click_when_the_person_is_deactivated(site, person):
    page = person()
    page.goto(f"{site.base}/")
    sso_sign_in(page, SUPPORT)
    page.wait_for_url(f"{site.base}/")
    page.get_by_text(re.compile(r"^Select all \d+ matching orders$")).wait_for()
    page.locator('[data-testid="stSidebar"]').get_by_text(re.compile(r"· Support")).first.wait_for()
    wait_idle(page)
    shot(page, "sso_08_support_signed_in_by_sso")
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "od_session")
    assert session_row(site.db, token).method == "sso:keycloak"

    admin = find_staff(site.db, ADMIN).as_actor()
    set_staff_active(site.db, admin, SUPPORT, False)
    try:
        page.get_by_role("link", name="Jobs").first.click()
        page.get_by_text(
            re.compile(
                r"Your session has ended: your account was deactivated by "
                r"admin@\u2060?ordersdesk\.test"  # a word joiner keeps Markdown from linking it
            )
        ).wait_for()
        assert heading(page, "Jobs").count() == 0
        shot(page, "sso_09_support_session_ended")
        row = session_row(site.db, token)
        assert row.revoked_at is not None
        assert row.revoked_reason == "your account was deactivated by admin@ordersdesk.test"

        page.goto(f"{site.base}/")  # and SSO does not sign a deactivated account back in
        sso_sign_in(page, SUPPORT)
        page.wait_for_url(f"{site.base}/sign-in")
        page.locator("#error").filter(has_text="is deactivated; ask an admin").wait_for()
        assert "od_session" not in cookie_names(page)
        shot(page, "sso_10_deactivated_refused")
    finally:
        set_staff_active(site.db, admin, SUPPORT, True)
