"""Staff sign-in, server-side sessions and what ends them (orders_core.authentication,
orders_core.sessions, orders_core.staff), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from orders_core import authentication as auth
from orders_core import demo, jobs, lifecycle, sessions, staff
from orders_core.audit import AuditEvent
from orders_core.checkout import place_order
from orders_core.clock import utcnow
from orders_core.config import load_settings
from orders_core.errors import (
    AccessWithdrawn,
    AccountDeactivated,
    AuthenticationError,
    PermissionDenied,
    SignInLocked,
    ValidationError,
)
from orders_core.job_engine import Worker, run_job_here
from orders_core.schema import order_events, orders, refunds, staff_audit, staff_sessions
from orders_core.staff import SYSTEM

PASSWORD = demo.DEMO_PASSWORD
ADMIN, OPS, SUPPORT, ANALYST = (f"{r}@ordersdesk.test" for r in ("admin", "ops", "support", "analyst"))
HERE = "203.0.113.7"


@pytest.fixture
def people(db):
    """The demo staff, with their real passwords."""
    demo.ensure_demo_staff(db)
    return db


def admin(db):
    return staff.find_staff(db, ADMIN).as_actor()


def audit_rows(db, event: AuditEvent | None = None):
    query = select(staff_audit).order_by(staff_audit.c.id)
    if event is not None:
        query = query.where(staff_audit.c.event == event.value)
    with db.read() as conn:
        return conn.execute(query).all()


def session_row(db, token: str):
    with db.read() as conn:
        return conn.execute(
            select(staff_sessions).where(staff_sessions.c.token_hash == sessions.token_hash(token))
        ).one()


# -- signing in -----------------------------------------------------------------------------
def test_a_password_sign_in_makes_a_session_whose_token_only_the_browser_holds(people):
    signed_in = auth.sign_in_with_password(
        people, OPS, PASSWORD, client_address=HERE, user_agent="Mozilla/5.0 Chrome/156"
    )
    assert signed_in.account.email == OPS and len(signed_in.token) >= 43  # 256 bits, base64url
    row = session_row(people, signed_in.token)
    assert row.token_hash != signed_in.token and len(row.token_hash) == 64
    assert (row.client_address, row.user_agent, row.method) == (HERE, "Mozilla/5.0 Chrome/156", "password")
    assert row.expires_at - row.created_at == dt.timedelta(days=7)
    assert row.idle_expires_at - row.created_at == dt.timedelta(minutes=720)
    current = auth.current_session(people, signed_in.token)
    assert isinstance(current, auth.SignedIn) and current.account.role == staff.Role.OPS
    [entry] = audit_rows(people, AuditEvent.SIGN_IN)
    assert (entry.subject_key, entry.success, entry.client_address) == (OPS, True, HERE)


def test_unknown_account_and_wrong_password_get_the_same_answer(people):
    for email, password in ((OPS, "wrong password"), ("nobody@ordersdesk.test", PASSWORD)):
        with pytest.raises(AuthenticationError) as refused:
            auth.sign_in_with_password(people, email, password, client_address=HERE)
        assert str(refused.value) == "Unknown email or wrong password."
    assert [(r.success, r.detail) for r in audit_rows(people, AuditEvent.SIGN_IN)] == [
        (False, "wrong password"),
        (False, "unknown account"),
    ]
    with people.read() as conn:
        assert conn.execute(select(staff_sessions)).all() == []


def test_a_deactivated_account_with_the_right_password_is_told_so_and_gets_no_session(people):
    staff.set_staff_active(people, admin(people), SUPPORT, False)
    with pytest.raises(AccountDeactivated, match="deactivated"):
        auth.sign_in_with_password(people, SUPPORT, PASSWORD)
    with pytest.raises(AuthenticationError, match="Unknown email or wrong password"):
        auth.sign_in_with_password(people, SUPPORT, "not the password")
    with people.read() as conn:
        assert conn.execute(select(staff_sessions)).all() == []


def test_password_sign_in_can_be_turned_off(people, monkeypatch):
    monkeypatch.setenv("ORDERS_PASSWORD_SIGN_IN", "0")
    with pytest.raises(AuthenticationError, match="turned off"):
        auth.sign_in_with_password(people, OPS, PASSWORD)


# -- throttling ----------------------------------------------------------------------------
def test_five_failures_lock_that_account_from_that_address_for_fifteen_minutes(people):
    for _ in range(5):
        with pytest.raises(AuthenticationError):
            auth.sign_in_with_password(people, OPS, "guess", client_address=HERE)
    with pytest.raises(SignInLocked) as locked:
        auth.sign_in_with_password(people, OPS, PASSWORD, client_address=HERE)  # even the right one
    assert "Try again after" in str(locked.value)
    assert dt.timedelta(minutes=14) < locked.value.retry_at - utcnow() <= dt.timedelta(minutes=15)
    assert audit_rows(people, AuditEvent.SIGN_IN_THROTTLED)[-1].subject_key == OPS
    # Another address, or another account from this one, is not locked out.
    assert auth.sign_in_with_password(people, OPS, PASSWORD, client_address="198.51.100.1")
    assert auth.sign_in_with_password(people, SUPPORT, PASSWORD, client_address=HERE)


def test_the_lock_lifts_when_the_window_has_passed(people):
    for _ in range(5):
        with pytest.raises(AuthenticationError):
            auth.sign_in_with_password(people, OPS, "guess", client_address=HERE)
    with people.write() as conn:  # as if the failures were 16 minutes ago
        conn.execute(update(staff_audit).values(at=utcnow() - dt.timedelta(minutes=16)))
    assert auth.sign_in_with_password(people, OPS, PASSWORD, client_address=HERE).account.email == OPS


def test_a_successful_sign_in_starts_the_count_again(people):
    for _ in range(4):
        with pytest.raises(AuthenticationError):
            auth.sign_in_with_password(people, OPS, "guess", client_address=HERE)
    auth.sign_in_with_password(people, OPS, PASSWORD, client_address=HERE)
    for _ in range(4):
        with pytest.raises(AuthenticationError) as refused:
            auth.sign_in_with_password(people, OPS, "guess", client_address=HERE)
        assert not isinstance(refused.value, SignInLocked)


# -- what ends a session --------------------------------------------------------------------
def ended(db, token) -> str:
    state = auth.current_session(db, token)
    assert isinstance(state, auth.SessionEnded), state
    return state.reason


def test_signing_out_ends_the_session_for_every_copy_of_its_cookie(people):
    token = auth.sign_in_with_password(people, OPS, PASSWORD).token
    copy = str(token)
    assert auth.sign_out(people, token)
    assert ended(people, copy) == "you signed out"
    assert not auth.sign_out(people, copy)  # already ended
    assert audit_rows(people, AuditEvent.SIGN_OUT)[-1].subject_key == OPS


@pytest.mark.parametrize(
    "change,reason",
    [
        (
            lambda db: staff.set_staff_active(db, admin(db), SUPPORT, False),
            "your account was deactivated by admin@ordersdesk.test",
        ),
        (
            lambda db: staff.set_staff_role(db, admin(db), SUPPORT, "analyst"),
            "your role was changed to Analyst by admin@ordersdesk.test",
        ),
        (
            lambda db: staff.reset_staff_password(db, admin(db), SUPPORT, "temporary-pass-1"),
            "your password was reset by admin@ordersdesk.test",
        ),
        (
            lambda db: staff.sign_out_everywhere(db, admin(db), SUPPORT),
            "admin@ordersdesk.test signed you out everywhere",
        ),
    ],
    ids=["deactivated", "new role", "password reset", "signed out everywhere"],
)
def test_an_admins_change_ends_every_session_of_that_person_with_the_reason(people, change, reason):
    tokens = [auth.sign_in_with_password(people, SUPPORT, PASSWORD).token for _ in range(2)]
    colleague = auth.sign_in_with_password(people, OPS, PASSWORD).token
    change(people)
    assert [ended(people, t) for t in tokens] == [reason, reason]
    assert isinstance(auth.current_session(people, colleague), auth.SignedIn)
    assert f"2 sessions: {reason}" in audit_rows(people, AuditEvent.SESSIONS_REVOKED)[-1].detail


def test_a_temporary_password_must_be_changed_and_changing_it_keeps_only_this_session(people):
    staff.reset_staff_password(people, admin(people), SUPPORT, "temporary-pass-1")
    here = auth.sign_in_with_password(people, SUPPORT, "temporary-pass-1")
    elsewhere = auth.sign_in_with_password(people, SUPPORT, "temporary-pass-1")
    assert here.account.password_must_change
    actor = here.account.as_actor()
    with pytest.raises(ValidationError, match="current password"):
        staff.change_own_password(people, actor, "wrong", "my-own-password", keep_session_id=here.session.id)
    with pytest.raises(ValidationError, match="at least 8"):
        staff.change_own_password(people, actor, "temporary-pass-1", "short", keep_session_id=here.session.id)
    staff.change_own_password(
        people, actor, "temporary-pass-1", "my-own-password", keep_session_id=here.session.id
    )
    state = auth.current_session(people, here.token)
    assert isinstance(state, auth.SignedIn) and not state.account.password_must_change
    assert ended(people, elsewhere.token) == "your password was changed"
    with pytest.raises(AuthenticationError):
        auth.sign_in_with_password(people, SUPPORT, "temporary-pass-1")
    assert auth.sign_in_with_password(people, SUPPORT, "my-own-password")


def test_an_idle_session_and_an_old_session_end_on_their_own(people):
    idle = auth.sign_in_with_password(people, OPS, PASSWORD).token
    old = auth.sign_in_with_password(people, OPS, PASSWORD).token
    with people.write() as conn:
        conn.execute(
            update(staff_sessions)
            .where(staff_sessions.c.token_hash == sessions.token_hash(idle))
            .values(idle_expires_at=utcnow() - dt.timedelta(seconds=1))
        )
        conn.execute(
            update(staff_sessions)
            .where(staff_sessions.c.token_hash == sessions.token_hash(old))
            .values(expires_at=utcnow() - dt.timedelta(seconds=1))
        )
    assert ended(people, idle) == "it was idle for more than 12 hours"
    assert ended(people, old).startswith("it reached its maximum age of 7 days")


def test_activity_pushes_the_idle_expiry_on_but_never_past_the_maximum_age(people):
    token = auth.sign_in_with_password(people, OPS, PASSWORD).token
    row = session_row(people, token)
    with people.write() as conn:  # last seen two hours ago
        conn.execute(
            update(staff_sessions).values(
                last_seen_at=row.last_seen_at - dt.timedelta(hours=2),
                idle_expires_at=row.idle_expires_at - dt.timedelta(hours=2),
            )
        )
    before = session_row(people, token)
    auth.current_session(people, token)
    after = session_row(people, token)
    assert after.last_seen_at > before.last_seen_at
    assert after.idle_expires_at > before.idle_expires_at
    assert after.idle_expires_at <= after.expires_at


@pytest.mark.parametrize("cookie", [None, "", "not-a-token", "x" * 5000, "\udcff"])
def test_a_cookie_that_names_no_session_is_simply_signed_out(people, cookie):
    assert auth.current_session(people, cookie) is None


# -- single sign-on ---------------------------------------------------------------------------
def test_a_verified_email_of_an_active_staff_member_signs_in_with_the_role_orders_desk_gives(people):
    signed_in = auth.sign_in_with_identity(
        people, email="Ops@OrdersDesk.test", email_verified=True, provider="keycloak", client_address=HERE
    )
    assert signed_in.account.role == staff.Role.OPS
    assert session_row(people, signed_in.token).method == "sso:keycloak"


@pytest.mark.parametrize(
    "email,verified,message",
    [
        ("stranger@example.test", True, "has no Orders Desk staff account"),
        (OPS, False, "has not verified"),
        (None, True, "did not tell us your email"),
    ],
)
def test_an_identity_that_is_not_an_active_staff_member_is_refused_and_logged(
    people, email, verified, message
):
    with pytest.raises(AuthenticationError, match=message):
        auth.sign_in_with_identity(people, email=email, email_verified=verified, provider="keycloak")
    entry = audit_rows(people, AuditEvent.SIGN_IN)[-1]
    assert not entry.success and entry.detail.startswith("sso:keycloak")
    with people.read() as conn:
        assert conn.execute(select(staff_sessions)).all() == []


def test_single_sign_on_refuses_a_deactivated_account(people):
    staff.set_staff_active(people, admin(people), SUPPORT, False)
    with pytest.raises(AuthenticationError, match="deactivated"):
        auth.sign_in_with_identity(people, email=SUPPORT, email_verified=True, provider="okta")


# -- the core decides, not the caller's Actor -------------------------------------------------
def test_a_deactivated_agent_holding_an_old_actor_refunds_nothing(people, customer):
    number = place_order(people, customer, items=[("PASS-USD", 1)], token="tok_visa").number
    stale = staff.find_staff(people, SUPPORT).as_actor()
    staff.set_staff_active(people, admin(people), SUPPORT, False)
    with pytest.raises(AccessWithdrawn, match="deactivated"):
        lifecycle.cancel_order(people, stale, number)
    with pytest.raises(AccessWithdrawn):
        lifecycle.add_note(people, stale, number, "still here?")
    with pytest.raises(AccessWithdrawn):
        jobs.enqueue(people, stale, "export", order_numbers=[number])
    with people.read() as conn:
        row = conn.execute(select(orders).where(orders.c.number == number)).one()
        assert (row.status, row.refunded_amount) == ("paid", 0)
        assert conn.execute(select(refunds)).all() == []
        assert [
            e.action for e in conn.execute(select(order_events).where(order_events.c.order_id == row.id))
        ] == ["create", "pay"]


def test_a_bulk_job_stops_at_its_next_chunk_when_its_requester_is_deactivated(people, customer, monkeypatch):
    monkeypatch.setenv("ORDERS_JOB_CHUNK_SIZE", "2")
    numbers = [
        place_order(people, customer, items=[("PASS-USD", 1)], token="tok_visa").number for _ in range(5)
    ]
    job = jobs.enqueue(
        people,
        staff.find_staff(people, SUPPORT).as_actor(),
        "cancel",
        order_numbers=numbers,
        reason="Out of stock",
    )
    worker = Worker(people, settings=load_settings())
    try:
        assert worker._step(job.id) == 2  # one chunk of two
    finally:
        worker.release()
        worker.close()
    staff.set_staff_active(people, admin(people), SUPPORT, False)
    finished = run_job_here(people, job.id)
    assert (finished.status, finished.succeeded, finished.failed) == ("completed_with_failures", 2, 3)
    assert "Stopped: The staff account support@ordersdesk.test is deactivated" in finished.error
    reasons = {f["reason"] for f in jobs.job_failures(people, job.id, actor=SYSTEM)}
    assert len(reasons) == 1 and reasons.pop().startswith("Stopped: The staff account")
    with people.read() as conn:
        statuses = dict(
            conn.execute(select(orders.c.number, orders.c.status).where(orders.c.number.in_(numbers))).all()
        )
    assert sorted(statuses.values()) == ["canceled", "canceled", "paid", "paid", "paid"]


def test_a_bulk_job_whose_requester_lost_the_role_for_it_stops_too(people, customer):
    number = place_order(people, customer, items=[("PASS-USD", 1)], token="tok_visa").number
    job = jobs.enqueue(people, staff.find_staff(people, OPS).as_actor(), "fulfill", order_numbers=[number])
    staff.set_staff_role(people, admin(people), OPS, "support")
    finished = run_job_here(people, job.id)
    assert (finished.succeeded, finished.failed) == (0, 1)
    assert "not allowed to fulfill orders" in finished.error


def test_an_export_job_of_a_deactivated_analyst_writes_no_file(people, customer, tmp_path, monkeypatch):
    monkeypatch.setenv("ORDERS_DATA_DIR", str(tmp_path))
    number = place_order(people, customer, items=[("PASS-USD", 1)], token="tok_visa").number
    job = jobs.enqueue(people, staff.find_staff(people, ANALYST).as_actor(), "export", order_numbers=[number])
    staff.set_staff_active(people, admin(people), ANALYST, False)
    finished = run_job_here(people, job.id)
    assert finished.status == "failed" and "deactivated" in finished.error
    assert finished.export_path is None and not list(tmp_path.glob("exports/*.csv"))


def test_only_admins_see_the_audit_log_and_other_peoples_sessions(people):
    auth.sign_in_with_password(people, SUPPORT, PASSWORD)
    ops = staff.find_staff(people, OPS).as_actor()
    with pytest.raises(PermissionDenied):
        staff.audit_log(people, ops)
    with pytest.raises(PermissionDenied):
        staff.staff_sessions_of(people, ops, SUPPORT)
    assert len(staff.staff_sessions_of(people, admin(people), SUPPORT)) == 1
    assert staff.staff_sessions_of(people, ops, OPS) == []  # one's own: allowed
    assert [e.event for e in staff.audit_log(people, admin(people))][:1] == [AuditEvent.SIGN_IN]
