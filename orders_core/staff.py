"""Staff accounts, roles and the permission checks every state-changing service makes.

The roles nest: analyst < support < ops < admin. Each service asks `require(actor,
permission)`, so a page that forgets to hide a button still cannot do harm.
"""
from __future__ import annotations

import dataclasses
import enum

from sqlalchemy import func, insert, select, update

from .clock import utcnow
from .db import Database
from .errors import AuthenticationError, NotFound, PermissionDenied, ValidationError
from .passwords import check_new_password, hash_password, verify_password
from .schema import staff
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


_ANALYST = frozenset({Permission.VIEW, Permission.EXPORT})
_SUPPORT = _ANALYST | {Permission.CANCEL, Permission.RETURN, Permission.NOTE}
_OPS = _SUPPORT | {Permission.FULFILL, Permission.PAY, Permission.MANAGE_JOBS}
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ANALYST: _ANALYST,
    Role.SUPPORT: frozenset(_SUPPORT),
    Role.OPS: frozenset(_OPS),
    Role.ADMIN: frozenset(Permission),
}


@dataclasses.dataclass(frozen=True)
class Actor:
    """Who is acting: a staff member, a customer (own orders only), or the system
    (the CLI run by an operator on the server, the seed)."""
    email: str
    role: Role | None = None
    kind: str = "staff"  # staff, customer, system
    customer_id: int | None = None

    def can(self, permission: Permission) -> bool:
        if self.kind == "system":
            return True
        if self.kind == "customer":
            return permission == Permission.PAY
        return self.role is not None and permission in ROLE_PERMISSIONS[self.role]

    @property
    def label(self) -> str:
        return self.email


SYSTEM = Actor(email="system", kind="system")


def customer_actor(customer_id: int, email: str) -> Actor:
    return Actor(email=email, kind="customer", customer_id=customer_id)


def require(actor: Actor, permission: Permission) -> None:
    if actor is None or not isinstance(actor, Actor):
        raise PermissionDenied("Sign in as a staff member first.")
    if not actor.can(permission):
        who = f"{actor.role.label} " if actor.role else ""
        raise PermissionDenied(f"{who}{actor.email} is not allowed to {permission.value}.")


# -- accounts ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class StaffAccount:
    id: int
    email: str
    name: str
    role: Role
    active: bool

    def as_actor(self) -> Actor:
        return Actor(email=self.email, role=self.role)


def _account(row) -> StaffAccount:
    return StaffAccount(row.id, row.email, row.name, Role(row.role), bool(row.active))


def parse_role(value: str) -> Role:
    try:
        return Role(str(value).strip().lower())
    except ValueError:
        raise ValidationError(
            f"Unknown role {value!r}; use one of {', '.join(r.value for r in Role)}") from None


def create_staff(db: Database, actor: Actor, *, email: str, name: str, role: str,
                 password: str) -> StaffAccount:
    require(actor, Permission.MANAGE_STAFF)
    return _insert_staff(db, email=email, name=name, role=role, password=password)


def _insert_staff(db: Database, *, email: str, name: str, role: str, password: str) -> StaffAccount:
    email = clean_email(email)
    name = clean_text(name, "Name", max_length=200)
    parsed_role = parse_role(role)
    if (problem := check_new_password(password)):
        raise ValidationError(problem)
    with db.write() as conn:
        exists = conn.execute(select(staff.c.id).where(staff.c.email_key == email.lower())).first()
        if exists:
            raise ValidationError(f"A staff account for {email} already exists.")
        new_id = conn.execute(insert(staff).values(
            email=email, email_key=email.lower(), name=name, role=parsed_role.value, active=True,
            password_hash=hash_password(password), created_at=utcnow())).inserted_primary_key[0]
    return StaffAccount(new_id, email, name, parsed_role, True)


def ensure_staff(db: Database, *, email: str, name: str, role: str, password: str) -> None:
    """Create the account unless it exists (seeding); leaves an existing one as it is."""
    with db.read() as conn:
        if conn.execute(select(staff.c.id).where(staff.c.email_key == email.lower())).first():
            return
    _insert_staff(db, email=email, name=name, role=role, password=password)


def sign_in_staff(db: Database, email: str, password: str) -> StaffAccount:
    with db.read() as conn:
        row = conn.execute(select(staff).where(
            staff.c.email_key == (email or "").strip().lower())).one_or_none()
    if row is None or not row.active or not verify_password(row.password_hash, password or ""):
        raise AuthenticationError("Unknown email or wrong password.")
    return _account(row)


def find_staff(db: Database, email: str) -> StaffAccount:
    with db.read() as conn:
        row = conn.execute(select(staff).where(
            staff.c.email_key == (email or "").strip().lower())).one_or_none()
    if row is None:
        raise NotFound(f"No staff account for {email!r}.")
    return _account(row)


def actor_for_email(db: Database, email: str) -> Actor:
    """The acting staff member named on the CLI (`--actor`); must be active."""
    account = find_staff(db, email)
    if not account.active:
        raise PermissionDenied(f"The staff account {account.email} is deactivated.")
    return account.as_actor()


def list_staff(db: Database, actor: Actor) -> list[StaffAccount]:
    require(actor, Permission.MANAGE_STAFF)
    with db.read() as conn:
        return [_account(r) for r in conn.execute(select(staff).order_by(staff.c.email_key))]


def set_staff_role(db: Database, actor: Actor, email: str, role: str) -> StaffAccount:
    require(actor, Permission.MANAGE_STAFF)
    parsed = parse_role(role)
    account = find_staff(db, email)
    if account.email.lower() == actor.email.lower() and parsed != Role.ADMIN:
        raise ValidationError("You cannot take the admin role from yourself.")
    with db.write() as conn:
        conn.execute(update(staff).where(staff.c.id == account.id).values(role=parsed.value))
    return dataclasses.replace(account, role=parsed)


def set_staff_active(db: Database, actor: Actor, email: str, active: bool) -> StaffAccount:
    require(actor, Permission.MANAGE_STAFF)
    account = find_staff(db, email)
    if account.email.lower() == actor.email.lower() and not active:
        raise ValidationError("You cannot deactivate your own account.")
    with db.write() as conn:
        conn.execute(update(staff).where(staff.c.id == account.id).values(active=bool(active)))
    return dataclasses.replace(account, active=bool(active))


def count_staff(db: Database) -> int:
    with db.read() as conn:
        return conn.execute(select(func.count()).select_from(staff)).scalar_one()
