"""A small catalog and customers for the service tests, on whichever database the
`db` fixture gives (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, insert, select

from orders_core import customers
from orders_core.customers import AddressInput
from orders_core.schema import Base, products, skus
from tests.support.staff_accounts import insert_demo_staff

HOME = AddressInput(
    name="Ada Lovelace", line1="12 St James's Square", city="London", postal_code="SW1Y 4JH", country="GB"
)


@pytest.fixture
def catalog(db):
    """Shippable box (usd), digital passes (usd, eur), a yen item, a retired SKU."""
    with db.write() as conn:
        conn.execute(
            insert(products),
            [
                {"id": 1, "name": "Print box", "description": "", "shippable": True, "active": True},
                {"id": 2, "name": "Digital pass", "description": "", "shippable": False, "active": True},
            ],
        )
        conn.execute(
            insert(skus),
            [
                {
                    "id": 1,
                    "code": "BOX-USD",
                    "name": "Monthly box",
                    "product_id": 1,
                    "unit_amount": 1999,
                    "currency": "usd",
                    "active": True,
                },
                {
                    "id": 2,
                    "code": "PASS-USD",
                    "name": "Day pass",
                    "product_id": 2,
                    "unit_amount": 500,
                    "currency": "usd",
                    "active": True,
                },
                {
                    "id": 3,
                    "code": "PASS-EUR",
                    "name": "Day pass (EUR)",
                    "product_id": 2,
                    "unit_amount": 450,
                    "currency": "eur",
                    "active": True,
                },
                {
                    "id": 4,
                    "code": "PASS-JPY",
                    "name": "Day pass (JPY)",
                    "product_id": 2,
                    "unit_amount": 1200,
                    "currency": "jpy",
                    "active": True,
                },
                {
                    "id": 5,
                    "code": "MUG-OLD",
                    "name": "Retired mug",
                    "product_id": 1,
                    "unit_amount": 900,
                    "currency": "usd",
                    "active": False,
                },
            ],
        )
    insert_demo_staff(db)  # the staff Actors the tests act as
    return db


@pytest.fixture
def customer(catalog):
    return customers.sign_up(catalog, email="Ada@Example.test", name="Ada Lovelace", password="correct horse")


@pytest.fixture
def other_customer(catalog):
    return customers.sign_up(
        catalog, email="grace@example.test", name="Grace Hopper", password="correct horse"
    )


def row_counts(db) -> dict[str, int]:
    """Rows in every table: a fingerprint that must not move when input is refused."""
    with db.read() as conn:
        return {
            name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for name, table in Base.metadata.tables.items()
        }
