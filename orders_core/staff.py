"""Staff accounts, roles and the permission checks every state-changing service makes.

The roles nest: analyst < support < ops < admin. Each service asks `authorize(db,
actor, permission)`, which reads the account again, so a page that forgets to hide a
button, or a tab left open by someone since deactivated, still cannot do harm.
"""

from __future__ import annotations

import dataclasses
import enum

from sqlalchemy import func, insert, select, update

from . import audit, sessions
from .audit import AuditEvent
from .clock import utcnow
from .db import Database
from .errors import AccessWithdrawn, NotFound, PermissionDenied, ValidationError
from .passwords import check_new_password, hash_password, verify_password
from .schema import staff
from .status import Action
from .validation import clean_email, clean_text


class Role(str, enum.Enum):
    ANALYST = "analyst"
    SUPPORT = "support"
    OPS = "ops"
    ADMIN = "admin"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class Permission(str, enum.Enum):
    VIEW = "view orders"
    EXPORT = "export orders"
    CANCEL = "cancel orders"
    RETURN = "return orders"
    NOTE = "add staff notes"
    FULFILL = "fulfill orders"
    PAY = "take payments"
    MANAGE_JOBS = "cancel or retry jobs"
    MANAGE_STAFF = "manage staff accounts"
    RECONCILE = "reconcile payments with the gateway"
    PUBLISH_VIEWS = "publish team views"  # saved views of the orders list everyone sees


# The permission each status move needs, whoever asks (a page, the CLI, a bulk job).
ACTION_PERMISSIONS: dict[Action, Permission] = {
    Action.PAY: Permission.PAY,
    Action.FULFILL: Permission.FULFILL,
    Action.CANCEL: Permission.CANCEL,
    Action.RETURN: Permission.RETURN,
}

_ANALYST = frozenset({Permission.VIEW, Permission.EXPORT, Permission.RECONCILE})
_SUPPORT = _ANALYST | {Permission.CANCEL, Permission.RETURN, Permission.NOTE}
_OPS = _SUPPORT | {Permission.FULFILL, Permission.PAY, Permission.MANAGE_JOBS}
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ANALYST: _ANALYST,
    Role.SUPPORT: frozenset(_SUPPORT),
    Role.OPS: frozenset(_OPS),
    Role.ADMIN: frozenset(Permission),
}


class ActorKind(str, enum.Enum):
    STAFF = "staff"
    CUSTOMER = "customer"  # their own orders only
    SYSTEM = "system"  # the CLI run by an operator on the server, the seed


@dataclasses.dataclass(frozen=True)
class Actor:
    """Who is acting: a staff member, a customer (own orders only), or the system
    (the CLI run by an operator on the server, the seed). For a staff member this is
    a claim, not proof: `authorize` checks it against the staff table every time."""

    email: str
    role: Role | None = None
    kind: ActorKind = ActorKind.STAFF
    customer_id: int | None = None
    staff_id: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "kind", ActorKind(self.kind))

    def can(self, permission: Permission) -> bool:
        if self.kind == ActorKind.SYSTEM:
            return True
        if self.kind == ActorKind.CUSTOMER:
            return permission == Permission.PAY
        return self.role is not None and permission in ROLE_PERMISSIONS[self.role]

    @property
    def label(self) -> str:
        return self.email


SYSTEM = Actor(email="system", kind=ActorKind.SYSTEM)


def customer_actor(customer_id: int, email: str) -> Actor:
    return Actor(email=email, kind=ActorKind.CUSTOMER, customer_id=customer_id)


def require(actor: Actor, permission: Permission) -> None:
    """The pure check of what an actor's role allows (menus use `Actor.can`)."""
    if actor is None or not isinstance(actor, Actor):
        raise PermissionDenied("Sign in as a staff member first.")
    if not actor.can(permission):
        who = f"{actor.role.label} " if actor.role else ""
        raise PermissionDenied(f"{who}{actor.email} is not allowed to {permission.value}.")


def authorize(db: Database, actor: Actor, permission: Permission) -> Actor:
    """What every state-changing service and every export asks first: for a staff
    member, the account is read again, so a deactivation or a new role takes effect
    at the next request, whatever Actor the caller holds. Returns the actor as the
    database has it now."""
    if actor is None or not isinstance(actor, Actor):
        raise PermissionDenied("Sign in as a staff member first.")
    if actor.kind != ActorKind.STAFF:
        require(actor, permission)
        return actor
    with db.read() as conn:
        if actor.staff_id is not None:
            row = conn.execute(select(staff).where(staff.c.id == actor.staff_id)).one_or_none()
        else:
            row = conn.execute(
                select(staff).where(staff.c.email_key == (actor.email or "").strip().lower())
            ).one_or_none()
    if row is None:
        raise AccessWithdrawn(f"The staff account {actor.email} no longer exists.")
    if not row.active:
        raise AccessWithdrawn(f"The staff account {row.email} is deactivated.")
    current = _account(row).as_actor()
    require(current, permission)
    return current


# -- accounts ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class StaffAccount:
    id: int
    email: str
    name: str
    role: Role
    active: bool
    password_must_change: bool = False

    def as_actor(self) -> Actor:
        return Actor(email=self.email, role=self.role, staff_id=self.id)


def _account(row) -> StaffAccount:
    return StaffAccount(
        row.id, row.email, row.name, Role(row.role), bool(row.active), bool(row.password_must_change)
    )


def parse_role(value: str) -> Role:
    try:
        return Role(str(value).strip().lower())
    except ValueError:
        raise ValidationError(
            f"Unknown role {value!r}; use one of {', '.join(r.value for r in Role)}"
        ) from None


def create_staff(
    db: Database, actor: Actor, *, email: str, name: str, role: str, password: str
) -> StaffAccount:
    actor = authorize(db, actor, Permission.MANAGE_STAFF)
    account = _insert_staff(db, email=email, name=name, role=role, password=password)
    with db.write() as conn:
        audit.record(
            conn,
            AuditEvent.ACCOUNT_CREATED,
            actor=actor.label,
            subject=account.email,
            detail=f"role {account.role.label}",
        )
    return account


def _insert_staff(db: Database, *, email: str, name: str, role: str, password: str) -> StaffAccount:
    email = clean_email(email)
    name = clean_text(name, "Name", max_length=200)
    parsed_role = parse_role(role)
    if problem := check_new_password(password):
        raise ValidationError(problem)
    with db.write() as conn:
        exists = conn.execute(select(staff.c.id).where(staff.c.email_key == email.lower())).first()
        if exists:
            raise ValidationError(f"A staff account for {email} already exists.")
        now = utcnow()
        new_id = conn.execute(
            insert(staff).values(
                email=email,
                email_key=email.lower(),
                name=name,
                role=parsed_role.value,
                active=True,
                password_hash=hash_password(password),
                created_at=now,
                password_must_change=False,
                password_changed_at=now,
            )
        ).inserted_primary_key[0]
    return StaffAccount(new_id, email, name, parsed_role, True)


def ensure_staff(db: Database, *, email: str, name: str, role: str, password: str) -> None:
    """Create the account unless it exists (seeding); leaves an existing one as it is."""
    with db.read() as conn:
        if conn.execute(select(staff.c.id).where(staff.c.email_key == email.lower())).first():
            return
    _insert_staff(db, email=email, name=name, role=role, password=password)


def find_staff(db: Database, email: str) -> StaffAccount:
    with db.read() as conn:
        row = conn.execute(
            select(staff).where(staff.c.email_key == (email or "").strip().lower())
        ).one_or_none()
    if row is None:
        raise NotFound(f"No staff account for {email!r}.")
    return _account(row)


def staff_by_id(conn, staff_id: int) -> StaffAccount | None:
    row = conn.execute(select(staff).where(staff.c.id == staff_id)).one_or_none()
    return _account(row) if row is not None else None


def actor_for_email(db: Database, email: str) -> Actor:
    """The acting staff member named on the CLI (`--actor`); must be active."""
    account = find_staff(db, email)
    if not account.active:
        raise PermissionDenied(f"The staff account {account.email} is deactivated.")
    return account.as_actor()


def list_staff(db: Database, actor: Actor) -> list[StaffAccount]:
    authorize(db, actor, Permission.MANAGE_STAFF)
    with db.read() as conn:
        return [_account(r) for r in conn.execute(select(staff).order_by(staff.c.email_key))]


def set_staff_role(
    db: Database, actor: Actor, email: str, role: str, *, client_address: str = ""
) -> StaffAccount:
    """A new role; every session of that person ends (they sign in again with it)."""
    actor = authorize(db, actor, Permission.MANAGE_STAFF)
    parsed = parse_role(role)
    account = find_staff(db, email)
    if account.email.lower() == actor.email.lower() and parsed != Role.ADMIN:
        raise ValidationError("You cannot take the admin role from yourself.")
    if parsed == account.role:
        return account
    with db.write() as conn:
        conn.execute(update(staff).where(staff.c.id == account.id).values(role=parsed.value))
        audit.record(
            conn,
            AuditEvent.ROLE_CHANGED,
            actor=actor.label,
            subject=account.email,
            detail=f"{account.role.label} → {parsed.label}",
            client_address=client_address,
        )
        _revoke_everywhere(
            conn,
            account,
            f"your role was changed to {parsed.label} by {actor.label}",
            actor=actor.label,
            client_address=client_address,
        )
    return dataclasses.replace(account, role=parsed)


def set_staff_active(
    db: Database, actor: Actor, email: str, active: bool, *, client_address: str = ""
) -> StaffAccount:
    """Deactivating ends every session of that person at once."""
    actor = authorize(db, actor, Permission.MANAGE_STAFF)
    account = find_staff(db, email)
    if account.email.lower() == actor.email.lower() and not active:
        raise ValidationError("You cannot deactivate your own account.")
    if bool(active) == account.active:
        return account
    with db.write() as conn:
        conn.execute(update(staff).where(staff.c.id == account.id).values(active=bool(active)))
        audit.record(
            conn,
            AuditEvent.REACTIVATED if active else AuditEvent.DEACTIVATED,
            actor=actor.label,
            subject=account.email,
            client_address=client_address,
        )
        if not active:
            _revoke_everywhere(
                conn,
                account,
                f"your account was deactivated by {actor.label}",
                actor=actor.label,
                client_address=client_address,
            )
    return dataclasses.replace(account, active=bool(active))


def reset_staff_password(
    db: Database, actor: Actor, email: str, temporary_password: str, *, client_address: str = ""
) -> StaffAccount:
    """An admin sets a temporary password, which must be changed at the next sign-in;
    every session of that person ends."""
    actor = authorize(db, actor, Permission.MANAGE_STAFF)
    account = find_staff(db, email)
    if problem := check_new_password(temporary_password):
        raise ValidationError(problem)
    with db.write() as conn:
        _store_password(conn, account.id, temporary_password, must_change=True)
        audit.record(
            conn,
            AuditEvent.PASSWORD_RESET,
            actor=actor.label,
            subject=account.email,
            detail="temporary password set",
            client_address=client_address,
        )
        _revoke_everywhere(
            conn,
            account,
            f"your password was reset by {actor.label}",
            actor=actor.label,
            client_address=client_address,
        )
    return dataclasses.replace(account, password_must_change=True)


def change_own_password(
    db: Database,
    actor: Actor,
    current_password: str,
    new_password: str,
    *,
    keep_session_id: int | None = None,
    client_address: str = "",
) -> StaffAccount:
    """A staff member replaces their own password (the current one proves it is them).
    Their other sessions end; the one they are using (`keep_session_id`) stays."""
    if actor is None or not isinstance(actor, Actor) or actor.kind != ActorKind.STAFF:
        raise PermissionDenied("Sign in as a staff member first.")
    with db.read() as conn:
        row = conn.execute(
            select(staff).where(staff.c.email_key == actor.email.strip().lower())
        ).one_or_none()
    if row is None or not row.active:
        raise AccessWithdrawn(f"The staff account {actor.email} is deactivated.")
    if not verify_password(row.password_hash, current_password or ""):
        with db.write() as conn:
            audit.record(
                conn,
                AuditEvent.PASSWORD_CHANGED,
                actor=row.email,
                subject=row.email,
                success=False,
                detail="current password wrong",
                client_address=client_address,
            )
        raise ValidationError("The current password is not right.")
    if problem := check_new_password(new_password):
        raise ValidationError(problem)
    if new_password == current_password:
        raise ValidationError("Choose a new password that differs from the current one.")
    account = _account(row)
    with db.write() as conn:
        _store_password(conn, row.id, new_password, must_change=False)
        audit.record(
            conn,
            AuditEvent.PASSWORD_CHANGED,
            actor=row.email,
            subject=row.email,
            client_address=client_address,
        )
        _revoke_everywhere(
            conn,
            account,
            "your password was changed",
            actor=row.email,
            client_address=client_address,
            keep_session_id=keep_session_id,
        )
    return dataclasses.replace(account, password_must_change=False)


def sign_out_everywhere(
    db: Database, actor: Actor, email: str, *, keep_session_id: int | None = None, client_address: str = ""
) -> int:
    """End every session of `email` (an admin for anyone; a person for themselves,
    keeping the one they use). Returns how many ended."""
    own = _is_self(actor, email)
    if own:
        actor = authorize(db, actor, Permission.VIEW)
    else:
        actor = authorize(db, actor, Permission.MANAGE_STAFF)
    account = find_staff(db, email)
    reason = "you signed out everywhere" if own else f"{actor.label} signed you out everywhere"
    with db.write() as conn:
        return _revoke_everywhere(
            conn,
            account,
            reason,
            actor=actor.label,
            client_address=client_address,
            keep_session_id=keep_session_id if own else None,
        )


def _store_password(conn, staff_id: int, password: str, *, must_change: bool) -> None:
    """A new password's hash, whether it must be replaced at the next sign-in, and when."""
    conn.execute(
        update(staff)
        .where(staff.c.id == staff_id)
        .values(
            password_hash=hash_password(password),
            password_must_change=must_change,
            password_changed_at=utcnow(),
        )
    )


def _revoke_everywhere(
    conn,
    account: StaffAccount,
    reason: str,
    *,
    actor: str,
    client_address: str,
    keep_session_id: int | None = None,
) -> int:
    ended = sessions.revoke_all(conn, account.id, reason, keep_session_id=keep_session_id)
    if ended:
        audit.record(
            conn,
            AuditEvent.SESSIONS_REVOKED,
            actor=actor,
            subject=account.email,
            detail=f"{ended} session{'s' if ended != 1 else ''}: {reason}",
            client_address=client_address,
        )
    return ended


def _is_self(actor: Actor | None, email: str | None) -> bool:
    """The staff member acting on their own account."""
    return (
        actor is not None
        and actor.kind == ActorKind.STAFF
        and actor.email.lower() == (email or "").strip().lower()
    )


def staff_sessions_of(db: Database, actor: Actor, email: str) -> list[sessions.StaffSession]:
    """The open sessions of a staff member (admins; or the person themselves)."""
    own = _is_self(actor, email)
    authorize(db, actor, Permission.VIEW if own else Permission.MANAGE_STAFF)
    account = find_staff(db, email)
    with db.read() as conn:
        return sessions.open_sessions(conn, account.id, utcnow())


def audit_log(
    db: Database, actor: Actor, *, subject: str | None = None, limit: int = 200
) -> list[audit.AuditEntry]:
    authorize(db, actor, Permission.MANAGE_STAFF)
    return audit.recent_entries(db, subject=subject, limit=limit)


def count_staff(db: Database) -> int:
    with db.read() as conn:
        return conn.execute(select(func.count()).select_from(staff)).scalar_one()
