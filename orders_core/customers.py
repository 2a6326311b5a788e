"""Customer accounts (sign-up, sign-in) and their saved addresses."""

from __future__ import annotations

import dataclasses
import re

from sqlalchemy import insert, select

from .clock import utcnow
from .db import Database
from .errors import AuthenticationError, FieldErrors, ValidationError
from .passwords import check_new_password, hash_password, verify_password
from .schema import addresses, customers
from .validation import clean_email, clean_text

_COUNTRY = re.compile(r"^[A-Z]{2}$")


@dataclasses.dataclass(frozen=True)
class CustomerAccount:
    id: int
    email: str
    name: str


@dataclasses.dataclass(frozen=True)
class AddressInput:
    name: str
    line1: str
    city: str
    postal_code: str
    country: str
    line2: str = ""
    region: str = ""

    def cleaned(self) -> AddressInput:
        """The address with every field cleaned, or FieldErrors naming every field that
        is missing or malformed (all at once, so a form can show each at its field)."""
        cleaned: dict[str, str] = {}
        errors: dict[str, str] = {}
        for field, label, max_length, required in _ADDRESS_FIELDS:
            try:
                cleaned[field] = clean_text(
                    getattr(self, field), label, max_length=max_length, required=required
                )
            except ValidationError as error:
                errors[field] = str(error)
        if "country" in cleaned:
            country = cleaned["country"].upper()
            if not _COUNTRY.fullmatch(country):
                errors["country"] = (
                    f"Country must be a two-letter ISO code such as US or FR; got {country!r}."
                )
            cleaned["country"] = country
        if errors:
            raise FieldErrors(errors, subject="address")
        return AddressInput(**cleaned)


# (field, label in messages, longest, required), in the order a form shows them
_ADDRESS_FIELDS = (
    ("name", "Address name", 200, True),
    ("line1", "Address line 1", 200, True),
    ("line2", "Address line 2", 200, False),
    ("city", "City", 100, True),
    ("region", "Region", 100, False),
    ("postal_code", "Postal code", 20, True),
    ("country", "Country", 100, True),
)


@dataclasses.dataclass(frozen=True)
class SavedAddress(AddressInput):
    id: int = 0


def sign_up(db: Database, *, email: str, name: str, password: str) -> CustomerAccount:
    email = clean_email(email)
    name = clean_text(name, "Name", max_length=200)
    if problem := check_new_password(password):
        raise ValidationError(problem)
    password_hash = hash_password(password)
    with db.write() as conn:
        if conn.execute(select(customers.c.id).where(customers.c.email_key == email.lower())).first():
            raise ValidationError(f"An account for {email} already exists; sign in instead.")
        new_id = conn.execute(
            insert(customers).values(
                email=email,
                email_key=email.lower(),
                name=name,
                password_hash=password_hash,
                created_at=utcnow(),
            )
        ).inserted_primary_key[0]
    return CustomerAccount(new_id, email, name)


def sign_in(db: Database, *, email: str, password: str) -> CustomerAccount:
    """One message for an unknown email and a wrong password: no account probing."""
    key = (email or "").strip().lower() if isinstance(email, str) else ""
    with db.read() as conn:
        row = conn.execute(select(customers).where(customers.c.email_key == key)).one_or_none()
    if row is None or not verify_password(row.password_hash, password if isinstance(password, str) else ""):
        raise AuthenticationError("Unknown email or wrong password.")
    return CustomerAccount(row.id, row.email, row.name)


def add_address(db: Database, customer: CustomerAccount, address: AddressInput) -> SavedAddress:
    clean = address.cleaned()
    with db.write() as conn:
        new_id = insert_address(conn, customer.id, clean)
    return SavedAddress(id=new_id, **dataclasses.asdict(clean))


def insert_address(conn, customer_id: int, clean: AddressInput) -> int:
    return conn.execute(
        insert(addresses).values(customer_id=customer_id, created_at=utcnow(), **dataclasses.asdict(clean))
    ).inserted_primary_key[0]


def list_addresses(db: Database, customer: CustomerAccount) -> list[SavedAddress]:
    with db.read() as conn:
        rows = conn.execute(
            select(addresses).where(addresses.c.customer_id == customer.id).order_by(addresses.c.id)
        ).all()
    return [_saved(r) for r in rows]


def _saved(row) -> SavedAddress:
    return SavedAddress(
        id=row.id,
        name=row.name,
        line1=row.line1,
        line2=row.line2 or "",
        city=row.city,
        region=row.region or "",
        postal_code=row.postal_code,
        country=row.country,
    )
