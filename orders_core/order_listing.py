"""Every order of a selection, streamed: the CLI's `orders --all / --limit N / --after`.

    for row in stream_orders(db, filters, actor=actor, limit=None, after="ORD-000123"):
        ...

Rows are the order list's (queries.list_orders), newest first: created_at, then id,
descending. They are read by keyset pagination, CHUNK_ROWS at a time, each chunk its
own short read transaction that starts after the last row of the one before, so any
number of orders costs the memory of one chunk, no read is held open while the caller
writes, and a SQLite WAL is never pinned by a long read.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import BigInteger, literal, select, tuple_

from .db import Database
from .errors import NotFound, ValidationError
from .order_numbers import parse_order_number
from .queries import LIST_COLUMNS, OrderFilters, _list_row
from .schema import orders
from .staff import Actor, Permission, authorize

CHUNK_ROWS = 2000


def stream_orders(
    db: Database,
    filters: OrderFilters,
    *,
    actor: Actor,
    limit: int | None = None,
    after: str | None = None,
    chunk_rows: int | None = None,
) -> Iterator[dict]:
    """The orders matching `filters`, newest first, as order-list rows: at most `limit`
    (None: all), starting after order number `after` in that order (it need not match)."""
    authorize(db, actor, Permission.VIEW)
    if limit is not None and limit < 1:
        raise ValidationError("The limit is at least 1.")
    key = None if after is None else _position_of(db, after)
    chunk_rows = chunk_rows or CHUNK_ROWS
    where = filters._planned(db)
    newest_first = (orders.c.created_at.desc(), orders.c.id.desc())
    left = limit
    while left is None or left > 0:
        size = chunk_rows if left is None else min(chunk_rows, left)
        query = select(*LIST_COLUMNS).where(*where).order_by(*newest_first).limit(size)
        if key is not None:  # a row-value comparison: one range of the created_at indexes
            created_at, order_id = key
            query = query.where(
                tuple_(orders.c.created_at, orders.c.id)
                < tuple_(literal(created_at, orders.c.created_at.type), literal(order_id, BigInteger))
            )
        with db.read() as conn:
            rows = conn.execute(query).all()
        for row in rows:
            yield _list_row(row)
        if len(rows) < size:
            return
        key = (rows[-1].created_at, rows[-1].id)
        if left is not None:
            left -= len(rows)


def _position_of(db: Database, number: str) -> tuple:
    order_id = parse_order_number(str(number))
    if order_id is None:
        raise ValidationError(f"{str(number)[:40]!r} is not an order number (like ORD-000123).")
    with db.read() as conn:
        row = conn.execute(select(orders.c.created_at, orders.c.id).where(orders.c.id == order_id)).first()
    if row is None:
        raise NotFound(f"No order {str(number).strip()[:40]}.")
    return row.created_at, row.id


__all__ = ["CHUNK_ROWS", "stream_orders"]
