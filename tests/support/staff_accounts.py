"""The four demo staff accounts, inserted straight into a test database: services
check every staff Actor against the staff table, so the Actors the tests act as must
exist. No password can sign them in (argon2 is slow and beside the point here);
tests of signing in use orders_core.demo.ensure_demo_staff instead."""

from __future__ import annotations

from sqlalchemy import insert, select

from orders_core.clock import utcnow
from orders_core.passwords import LOCKED
from orders_core.schema import staff

ROLES = ("analyst", "support", "ops", "admin")


def insert_demo_staff(db) -> None:
    now = utcnow()
    with db.write() as conn:
        have = set(conn.execute(select(staff.c.email_key)).scalars())
        rows = [
            dict(
                email=f"{role}@ordersdesk.test",
                email_key=f"{role}@ordersdesk.test",
                name=role.title(),
                role=role,
                active=True,
                password_hash=LOCKED,
                created_at=now,
            )
            for role in ROLES
            if f"{role}@ordersdesk.test" not in have
        ]
        if rows:
            conn.execute(insert(staff), rows)
