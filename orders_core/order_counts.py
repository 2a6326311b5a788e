"""order_day_counts, the count of orders per creation day, status and currency that the
database keeps with the orders (triggers, migration 0005): compare it with the orders
table, and rebuild it from there."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import Date, cast, delete, func, insert, literal_column, select

from .db import Database
from .schema import order_day_counts, orders


@dataclasses.dataclass(frozen=True)
class CountMismatch:
    day: dt.date
    status: str
    currency: str
    kept: int
    counted: int


def _counted(db: Database):
    day = cast(orders.c.created_at, Date) if db.is_postgres else func.substr(orders.c.created_at, 1, 10)
    return select(
        day.label("day"), orders.c.status, orders.c.currency, func.count().label("orders")
    ).group_by(literal_column("1"), literal_column("2"), literal_column("3"))


def mismatches(db: Database) -> list[CountMismatch]:
    """Every (day, status, currency) whose kept count differs from the orders table's."""
    with db.read() as conn:
        counted = {(_as_date(r.day), r.status, r.currency): r.orders for r in conn.execute(_counted(db))}
        kept = {
            (r.day, r.status, r.currency): r.orders
            for r in conn.execute(select(order_day_counts))
            if r.orders
        }
    return [
        CountMismatch(*key, kept.get(key, 0), counted.get(key, 0))
        for key in sorted(set(counted) | set(kept))
        if kept.get(key, 0) != counted.get(key, 0)
    ]


def rebuild(db: Database) -> int:
    """Recount from the orders table, in one write transaction; the rows written."""
    with db.write() as conn:  # on SQLite the write lock already keeps writers out
        if db.is_postgres:  # writers wait until the recount is committed
            conn.exec_driver_sql("LOCK TABLE orders IN SHARE MODE")
        conn.execute(delete(order_day_counts))
        rows = [
            {"day": _as_date(r.day), "status": r.status, "currency": r.currency, "orders": r.orders}
            for r in conn.execute(_counted(db))
        ]
        if rows:
            conn.execute(insert(order_day_counts), rows)
    return len(rows)


def _as_date(value) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
