"""Signing staff in and out, and the account behind a browser's session.

- Password sign-in: argon2id hashes; failures are throttled per account and client
  address (ORDERS_SIGN_IN_MAX_FAILURES in ORDERS_SIGN_IN_LOCKOUT_MINUTES lock that
  pair until the window has passed) and per address across accounts (ten times as
  many), all counted in the audit log. "Unknown email or wrong password" for both
  an unknown account and a wrong password; a deactivated account with the right
  password is told it is deactivated.
- Single sign-on: an identity provider vouches for a verified email, which must be
  an active staff account's; the role is always Orders Desk's own.
- Either way the result is a new server-side session (orders_core.sessions), and
  `current_session` reads the session and the account again on every request.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import func, select

from . import audit, sessions
from .audit import AuditEvent
from .clock import utcnow
from .config import Settings, load_settings
from .db import Database
from .errors import AccountDeactivated, AuthenticationError, SignInLocked
from .passwords import hash_password, verify_password
from .schema import staff, staff_audit
from .sessions import SessionPolicy, StaffSession
from .staff import StaffAccount, _account, staff_by_id

WRONG_CREDENTIALS = "Unknown email or wrong password."
MAX_EMAIL = 320
ADDRESS_FAILURE_FACTOR = 10
# Verified against when the account does not exist, so both answers take as long.
_NOBODY_HASH = hash_password("no account has this password")


@dataclasses.dataclass(frozen=True)
class SignedIn:
    """A browser's valid session and the account as the database has it now."""

    account: StaffAccount
    session: StaffSession
    token: str | None = None  # only when the session was just made (for the cookie)


@dataclasses.dataclass(frozen=True)
class SessionEnded:
    """The cookie names a session that is over; `reason` completes "Your session has
    ended: ..."."""

    reason: str


def _policy(settings: Settings | None) -> SessionPolicy:
    return SessionPolicy.from_settings(settings or load_settings())


def _lockout(settings: Settings) -> dt.timedelta:
    return dt.timedelta(minutes=settings.sign_in_lockout_minutes)


def _failures_since(conn, since: dt.datetime, *, subject: str | None, address: str) -> list[dt.datetime]:
    """Failed password sign-ins in the window, newest first, after the pair's last success."""
    where = [
        staff_audit.c.event == AuditEvent.SIGN_IN.value,
        staff_audit.c.at >= since,
        staff_audit.c.client_address == address,
    ]
    if subject is not None:
        where.append(staff_audit.c.subject_key == subject)
        last_success = conn.execute(
            select(func.max(staff_audit.c.at)).where(*where, staff_audit.c.success.is_(True))
        ).scalar()
        if last_success is not None:
            where.append(staff_audit.c.at > last_success)
    return list(
        conn.execute(
            select(staff_audit.c.at)
            .where(*where, staff_audit.c.success.is_(False))
            .order_by(staff_audit.c.at.desc())
        ).scalars()
    )


def locked_until(
    db: Database,
    email: str,
    client_address: str,
    *,
    settings: Settings | None = None,
    now: dt.datetime | None = None,
) -> dt.datetime | None:
    """When this account-and-address pair (or this address) may try again, or None."""
    settings = settings or load_settings()
    now = now or utcnow()
    window = _lockout(settings)
    subject = (email or "").strip().lower()[:MAX_EMAIL]
    limits = (
        (subject, settings.sign_in_max_failures),
        (None, settings.sign_in_max_failures * ADDRESS_FAILURE_FACTOR),
    )
    with db.read() as conn:
        for who, limit in limits:
            failures = _failures_since(conn, now - window, subject=who, address=client_address)
            if len(failures) >= limit:
                return failures[limit - 1] + window
    return None


def _record_refusal(
    db: Database,
    subject: str,
    detail: str,
    client_address: str,
    *,
    event: AuditEvent = AuditEvent.SIGN_IN,
    actor: str | None = None,
) -> None:
    """A refused sign-in in the staff audit log: what throttling counts, and what an
    admin reads."""
    with db.write() as conn:
        audit.record(
            conn,
            event,
            actor=subject if actor is None else actor,
            subject=subject,
            success=False,
            detail=detail,
            client_address=client_address,
        )


def sign_in_with_password(
    db: Database,
    email: str,
    password: str,
    *,
    client_address: str = "",
    user_agent: str = "",
    settings: Settings | None = None,
) -> SignedIn:
    settings = settings or load_settings()
    if not settings.password_sign_in:
        raise AuthenticationError("Password sign-in is turned off here; use single sign-on.")
    subject = (email or "").strip().lower()[:MAX_EMAIL] if isinstance(email, str) else ""
    now = utcnow()
    retry_at = locked_until(db, subject, client_address, settings=settings, now=now)
    if retry_at is not None:
        _record_refusal(
            db, subject, "too many failed sign-ins", client_address, event=AuditEvent.SIGN_IN_THROTTLED
        )
        minutes = max(1, int((retry_at - now).total_seconds() // 60) + 1)
        raise SignInLocked(
            f"Too many failed sign-ins for this account from your address. Try again after "
            f"{retry_at:%H:%M} UTC (in about {minutes} minute{'s' if minutes != 1 else ''}).",
            retry_at,
        )

    with db.read() as conn:
        row = (
            conn.execute(select(staff).where(staff.c.email_key == subject)).one_or_none() if subject else None
        )
    password_ok = verify_password(
        row.password_hash if row is not None else _NOBODY_HASH, password if isinstance(password, str) else ""
    )
    if row is None or not password_ok:
        _record_refusal(db, subject, "unknown account" if row is None else "wrong password", client_address)
        raise AuthenticationError(WRONG_CREDENTIALS)
    if not row.active:
        _record_refusal(db, subject, "account deactivated", client_address)
        raise AccountDeactivated(f"The staff account {row.email} is deactivated; ask an admin.")
    return _start(db, _account(row), "password", client_address, user_agent, settings)


def sign_in_with_identity(
    db: Database,
    *,
    email: str | None,
    email_verified: bool,
    provider: str,
    provider_label: str | None = None,
    client_address: str = "",
    user_agent: str = "",
    settings: Settings | None = None,
) -> SignedIn:
    """Single sign-on: the provider vouched for `email`; Orders Desk decides the rest.
    `provider` is its name in the configuration (recorded); `provider_label` is what
    people call it (in messages)."""
    settings = settings or load_settings()
    label = provider_label or provider
    subject = (email or "").strip().lower()[:MAX_EMAIL] if isinstance(email, str) else ""
    method = f"sso:{provider}"[:32]

    def refuse(detail: str, message: str):
        _record_refusal(db, subject, f"{method}: {detail}", client_address, actor=subject or f"({provider})")
        raise AuthenticationError(message)

    if not subject:
        refuse("no email in the identity", f"{label} did not tell us your email address.")
    if not email_verified:
        refuse(
            "email not verified",
            f"{label} has not verified {subject}; Orders Desk accepts only verified email addresses.",
        )
    with db.read() as conn:
        row = conn.execute(select(staff).where(staff.c.email_key == subject)).one_or_none()
    if row is None:
        refuse("no staff account", f"{subject} has no Orders Desk staff account; ask an admin to add you.")
    if not row.active:
        refuse("account deactivated", f"The staff account {row.email} is deactivated; ask an admin.")
    return _start(db, _account(row), method, client_address, user_agent, settings)


def _start(
    db: Database, account: StaffAccount, method: str, client_address: str, user_agent: str, settings: Settings
) -> SignedIn:
    with db.write() as conn:
        token, session_id = sessions.create(
            conn,
            account.id,
            _policy(settings),
            method=method,
            user_agent=user_agent,
            client_address=client_address,
        )
        audit.record(
            conn,
            AuditEvent.SIGN_IN,
            actor=account.email,
            subject=account.email,
            detail=method,
            client_address=client_address,
        )
        session = conn.execute(
            select(sessions.staff_sessions).where(sessions.staff_sessions.c.id == session_id)
        ).one()
    return SignedIn(account, sessions._session(session), token)


def current_session(
    db: Database, token: str | None, *, settings: Settings | None = None, touch: bool = True
) -> SignedIn | SessionEnded | None:
    """What a cookie's token means now: signed in (with the account re-read), a
    session that has ended and why, or None (no cookie, or not a token of ours)."""
    session = sessions.find(db, token)
    if session is None:
        return None
    policy = _policy(settings)
    now = utcnow()
    reason = session.end_reason(now, policy)
    if reason is not None:
        return SessionEnded(reason)
    with db.read() as conn:
        account = staff_by_id(conn, session.staff_id)
    if account is None or not account.active:
        return SessionEnded("your account was deactivated")
    if touch:
        sessions.touch(db, session, policy, now)
    return SignedIn(account, session)


def sign_out(db: Database, token: str | None, *, client_address: str = "") -> bool:
    """End the session this token names (a copy of the cookie no longer works)."""
    session = sessions.find(db, token)
    if session is None:
        return False
    with db.write() as conn:
        ended = sessions.revoke(conn, session.id, "you signed out")
        account = staff_by_id(conn, session.staff_id)
        if ended and account is not None:
            audit.record(
                conn,
                AuditEvent.SIGN_OUT,
                actor=account.email,
                subject=account.email,
                client_address=client_address,
            )
    return ended
