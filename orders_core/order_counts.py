"""order_day_counts, the count of orders per creation day, status and currency that the
database keeps with the orders (triggers, migration 0005), and order_skus, each order's
SKUs with its status and creation time (triggers, migration 0013): compare them with
the orders table (and its items), and rebuild them from there."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import Date, cast, delete, except_, func, insert, literal_column, select

from .db import Database
from .schema import order_day_counts, order_items, order_skus, orders


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


# -- order_skus: each order's SKUs with its status and creation time (migration 0013) -------
@dataclasses.dataclass(frozen=True)
class SkuRowMismatch:
    """One (order, SKU) whose kept row differs from its order and items: `kept` or
    `counted` is (status, created_at, total_amount, currency), or None where that side
    has no row."""

    order_id: int
    sku_id: int
    kept: tuple[str, dt.datetime, int, str] | None
    counted: tuple[str, dt.datetime, int, str] | None


SKU_ROW_COLUMNS = ("sku_id", "status", "created_at", "order_id", "total_amount", "currency")


def _sku_rows_from_orders():
    return (
        select(
            order_items.c.sku_id,
            orders.c.status,
            orders.c.created_at,
            orders.c.id.label("order_id"),
            orders.c.total_amount,
            orders.c.currency,
        )
        .select_from(order_items.join(orders, orders.c.id == order_items.c.order_id))
        .distinct()
    )


def _kept_sku_rows():
    return select(*(order_skus.c[name] for name in SKU_ROW_COLUMNS))


def sku_row_mismatches(db: Database, *, limit: int = 1000) -> list[SkuRowMismatch]:
    """Up to `limit` (order, SKU) pairs whose order_skus row differs from the orders and
    their items (missing, extra, or with another status or creation time). Compared in
    the database (both differences by EXCEPT), so only the differing rows come back."""
    with db.read() as conn:
        missing = conn.execute(except_(_sku_rows_from_orders(), _kept_sku_rows()).limit(limit)).all()
        extra = conn.execute(except_(_kept_sku_rows(), _sku_rows_from_orders()).limit(limit)).all()
    found: dict[tuple[int, int], list] = {}
    for rows, side in ((extra, 0), (missing, 1)):
        for sku_id, status, created_at, order_id, total, currency in rows:
            row = (status, _as_datetime(created_at), total, currency)
            found.setdefault((order_id, sku_id), [None, None])[side] = row
    return [SkuRowMismatch(order_id, sku_id, *sides) for (order_id, sku_id), sides in sorted(found.items())][
        :limit
    ]


def rebuild_sku_rows(db: Database) -> int:
    """Refill order_skus from the orders and their items, in one write transaction; the
    rows written."""
    with db.write() as conn:
        if db.is_postgres:  # writers wait until the refill is committed
            conn.exec_driver_sql("LOCK TABLE orders, order_items IN SHARE MODE")
        conn.execute(delete(order_skus))
        conn.execute(insert(order_skus).from_select(list(SKU_ROW_COLUMNS), _sku_rows_from_orders()))
        return conn.execute(select(func.count()).select_from(order_skus)).scalar_one()


def _as_datetime(value) -> dt.datetime:
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
