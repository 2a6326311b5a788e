"""A small shop for the reliability tests: a catalog with edge-case prices, two
customers with a saved address each, inserted directly (sign-up's argon2 hashing
costs a third of a second per account, and sign-up is not what these tests prove)."""

from __future__ import annotations

import dataclasses

from sqlalchemy import insert

from orders_core.clock import utcnow
from orders_core.customers import AddressInput, CustomerAccount
from orders_core.passwords import LOCKED
from orders_core.schema import addresses, customers, products, skus
from orders_core.staff import customer_actor
from tests.support.staff_accounts import insert_demo_staff

HOME = AddressInput(
    name="Ada Lovelace", line1="12 St James's Square", city="London", postal_code="SW1Y 4JH", country="GB"
)
ELSEWHERE = AddressInput(
    name="Grace Hopper", line1="1 Navy Yard", city="Arlington", region="VA", postal_code="22202", country="US"
)

SKUS = [
    # code, product id, unit amount, currency, active
    ("PASS-USD", 2, 500, "usd", True),
    ("PASS-EUR", 2, 450, "eur", True),
    ("PASS-JPY", 2, 1200, "jpy", True),
    ("BOX-USD", 1, 1999, "usd", True),
    ("GOLD-USD", 2, 10_000_000, "usd", True),  # ten of them pass Stripe's ceiling
    ("FREE-USD", 2, 0, "usd", True),
    ("MUG-OLD", 1, 900, "usd", False),
]


@dataclasses.dataclass(frozen=True)
class Shop:
    db: object
    customer: CustomerAccount
    other: CustomerAccount
    address_id: int
    other_address_id: int

    @property
    def customer_actor(self):
        return customer_actor(self.customer.id, self.customer.email)

    @property
    def other_actor(self):
        return customer_actor(self.other.id, self.other.email)


def build_shop(db) -> Shop:
    now = utcnow()
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
                    "id": i,
                    "code": code,
                    "name": code.title(),
                    "product_id": product,
                    "unit_amount": amount,
                    "currency": currency,
                    "active": active,
                }
                for i, (code, product, amount, currency, active) in enumerate(SKUS, start=1)
            ],
        )
        accounts = []
        for email, name, address in (
            ("ada@example.test", "Ada Lovelace", HOME),
            ("grace@example.test", "Grace Hopper", ELSEWHERE),
        ):
            customer_id = conn.execute(
                insert(customers).values(
                    email=email, email_key=email, name=name, password_hash=LOCKED, created_at=now
                )
            ).inserted_primary_key[0]
            address_id = conn.execute(
                insert(addresses).values(
                    customer_id=customer_id, created_at=now, **dataclasses.asdict(address)
                )
            ).inserted_primary_key[0]
            accounts.append((CustomerAccount(customer_id, email, name), address_id))
    (customer, address_id), (other, other_address_id) = accounts
    insert_demo_staff(db)  # the staff Actors the tests act as
    return Shop(db, customer, other, address_id, other_address_id)
