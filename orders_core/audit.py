"""The staff audit log: sign-ins (successful or not), sign-outs, session revocations,
role changes, deactivations and password changes: who, when, what, from where.

Entries are written in the caller's transaction, so an account change and its entry
commit together."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum

from sqlalchemy import Connection, insert, select

from .clock import utcnow
from .db import Database
from .schema import staff_audit

MAX_ADDRESS = 64
MAX_DETAIL = 500


class AuditEvent(str, enum.Enum):
    SIGN_IN = "sign_in"
    SIGN_IN_THROTTLED = "sign_in_throttled"
    SIGN_OUT = "sign_out"
    SESSIONS_REVOKED = "sessions_revoked"
    ROLE_CHANGED = "role_changed"
    DEACTIVATED = "deactivated"
    REACTIVATED = "reactivated"
    PASSWORD_CHANGED = "password_changed"
    PASSWORD_RESET = "password_reset"
    ACCOUNT_CREATED = "account_created"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()


@dataclasses.dataclass(frozen=True)
class AuditEntry:
    id: int
    at: dt.datetime
    event: AuditEvent
    actor: str
    subject: str
    success: bool
    detail: str
    client_address: str


def record(
    conn: Connection,
    event: AuditEvent,
    *,
    actor: str,
    subject: str,
    success: bool = True,
    detail: str = "",
    client_address: str = "",
    at: dt.datetime | None = None,
) -> None:
    conn.execute(
        insert(staff_audit).values(
            at=at or utcnow(),
            event=event.value,
            actor=(actor or "")[:320],
            subject_key=(subject or "").strip().lower()[:320],
            success=success,
            detail=(detail or "")[:MAX_DETAIL],
            client_address=(client_address or "")[:MAX_ADDRESS],
        )
    )


def recent_entries(db: Database, *, subject: str | None = None, limit: int = 200) -> list[AuditEntry]:
    """Newest first; only for callers that checked MANAGE_STAFF (staff.audit_log)."""
    query = select(staff_audit).order_by(staff_audit.c.at.desc(), staff_audit.c.id.desc()).limit(limit)
    if subject:
        query = query.where(staff_audit.c.subject_key == subject.strip().lower())
    with db.read() as conn:
        return [
            AuditEntry(
                r.id,
                r.at,
                AuditEvent(r.event),
                r.actor,
                r.subject_key,
                bool(r.success),
                r.detail,
                r.client_address,
            )
            for r in conn.execute(query)
        ]
