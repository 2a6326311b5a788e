"""Server-side staff sessions: the token a browser's cookie carries, and its row.

- A token is 256 random bits (URL-safe text). Only its SHA-256 is stored, so neither
  the database nor a log of it can sign anyone in.
- A session ends when it is revoked (sign-out, "sign out everywhere", an admin's
  change to the account), when it has been idle for ORDERS_SESSION_IDLE_MINUTES, or
  when it is older than ORDERS_SESSION_MAX_DAYS. An ended session never comes back.
- Every script run and every HTTP route looks the token up again (`look_up`); the
  last-seen time is written at most once a minute, so a click is a read, not a write.

Who may sign in, and the account behind a session, are orders_core.authentication's.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import secrets
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from .clock import utcnow
from .config import Settings
from .db import Database
from .schema import staff_sessions

TOKEN_BYTES = 32
MAX_TOKEN_LENGTH = 128  # a cookie longer than this is not one of ours
TOUCH_EVERY = dt.timedelta(seconds=60)
MAX_USER_AGENT = 400


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclasses.dataclass(frozen=True)
class SessionPolicy:
    idle: dt.timedelta
    max_age: dt.timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> SessionPolicy:
        return cls(
            idle=dt.timedelta(minutes=settings.session_idle_minutes),
            max_age=dt.timedelta(days=settings.session_max_days),
        )

    def idle_text(self) -> str:
        return _duration(self.idle)

    def max_age_text(self) -> str:
        return _duration(self.max_age)


def _duration(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes % (24 * 60) == 0:
        days = minutes // (24 * 60)
        return f"{days} day{'s' if days != 1 else ''}"
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


@dataclasses.dataclass(frozen=True)
class StaffSession:
    id: int
    staff_id: int
    method: str
    created_at: dt.datetime
    last_seen_at: dt.datetime
    idle_expires_at: dt.datetime
    expires_at: dt.datetime
    user_agent: str
    client_address: str
    revoked_at: dt.datetime | None
    revoked_reason: str | None

    def end_reason(self, now: dt.datetime, policy: SessionPolicy) -> str | None:
        """Why this session is over at `now`, or None while it is valid (a pure rule)."""
        if self.revoked_at is not None:
            return self.revoked_reason or "it was revoked"
        if now >= self.expires_at:
            return f"it reached its maximum age of {policy.max_age_text()}; sign in again"
        if now >= self.idle_expires_at:
            return f"it was idle for more than {policy.idle_text()}"
        return None


def _session(row: Row[Any]) -> StaffSession:
    return StaffSession(
        row.id,
        row.staff_id,
        row.method,
        row.created_at,
        row.last_seen_at,
        row.idle_expires_at,
        row.expires_at,
        row.user_agent,
        row.client_address,
        row.revoked_at,
        row.revoked_reason,
    )


def create(
    conn: Connection,
    staff_id: int,
    policy: SessionPolicy,
    *,
    method: str,
    user_agent: str = "",
    client_address: str = "",
    now: dt.datetime | None = None,
) -> tuple[str, int]:
    """A new session for `staff_id`: (the token for the cookie, the session's id)."""
    now = now or utcnow()
    token = new_token()
    key = conn.execute(
        insert(staff_sessions).values(
            token_hash=token_hash(token),
            staff_id=staff_id,
            method=method,
            created_at=now,
            last_seen_at=now,
            idle_expires_at=now + policy.idle,
            expires_at=now + policy.max_age,
            user_agent=(user_agent or "")[:MAX_USER_AGENT],
            client_address=(client_address or "")[:64],
            revoked_at=None,
            revoked_reason=None,
        )
    ).inserted_primary_key
    assert key is not None  # an INSERT of one row always has its key
    return token, int(key[0])


def find(db: Database, token: str | None) -> StaffSession | None:
    """The session a cookie's token names, valid or not; None for no such session."""
    if not token or not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        return None
    with db.read() as conn:
        row = conn.execute(
            select(staff_sessions).where(staff_sessions.c.token_hash == token_hash(token))
        ).one_or_none()
    return _session(row) if row is not None else None


def touch(db: Database, session: StaffSession, policy: SessionPolicy, now: dt.datetime | None = None) -> None:
    """Record activity: pushes the idle expiry on, at most once per TOUCH_EVERY."""
    now = now or utcnow()
    if now - session.last_seen_at < TOUCH_EVERY:
        return
    with db.write() as conn:
        conn.execute(
            update(staff_sessions)
            .where(staff_sessions.c.id == session.id, staff_sessions.c.revoked_at.is_(None))
            .values(last_seen_at=now, idle_expires_at=min(now + policy.idle, session.expires_at))
        )


def revoke(conn: Connection, session_id: int, reason: str, now: dt.datetime | None = None) -> bool:
    """End one session; False when it had already ended."""
    result = conn.execute(
        update(staff_sessions)
        .where(staff_sessions.c.id == session_id, staff_sessions.c.revoked_at.is_(None))
        .values(revoked_at=now or utcnow(), revoked_reason=reason)
    )
    return result.rowcount > 0


def revoke_all(
    conn: Connection,
    staff_id: int,
    reason: str,
    *,
    keep_session_id: int | None = None,
    now: dt.datetime | None = None,
) -> int:
    """End every open session of a staff member (but `keep_session_id`); how many."""
    query = update(staff_sessions).where(
        staff_sessions.c.staff_id == staff_id, staff_sessions.c.revoked_at.is_(None)
    )
    if keep_session_id is not None:
        query = query.where(staff_sessions.c.id != keep_session_id)
    return conn.execute(query.values(revoked_at=now or utcnow(), revoked_reason=reason)).rowcount


def open_sessions(conn: Connection, staff_id: int, now: dt.datetime) -> list[StaffSession]:
    """The staff member's sessions that are still valid, newest activity first."""
    rows = conn.execute(
        select(staff_sessions)
        .where(
            staff_sessions.c.staff_id == staff_id,
            staff_sessions.c.revoked_at.is_(None),
            staff_sessions.c.expires_at > now,
            staff_sessions.c.idle_expires_at > now,
        )
        .order_by(staff_sessions.c.last_seen_at.desc())
    )
    return [_session(r) for r in rows]
