"""Baselines, frozen here so that they stay what they were when orders_core changes.

- `v1_bundle`: the orders page's query bundle (tab counts, one page, total) exactly as
  orders_core/queries.py first wrote it (commit 786170a): GROUP BY status under the
  filters, the page, and a second COUNT(*), with search as LIKE on lower(email/name)
  and the SKU filter as a correlated EXISTS.
- `orm_fulfill_loop`: the obvious per-order ORM loop (load, change, add the event,
  commit), for #3.
- `pandas_export`: pandas.read_sql(...) + DataFrame.to_csv(...), for #2."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import Session

from orders_core.order_numbers import parse_order_number
from orders_core.queries import LIST_COLUMNS, SORTABLE, OrderFilters
from orders_core.schema import Order, OrderEvent, order_items, orders, skus
from orders_core.status import Status


# -- #1: the query bundle as first written ---------------------------------------------------
def _v1_search(text: str):
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    options = [
        func.lower(orders.c.customer_email).like(pattern, escape="\\"),
        func.lower(orders.c.customer_name).like(pattern, escape="\\"),
    ]
    order_id = parse_order_number(text)
    if order_id is not None:
        options.insert(0, orders.c.id == order_id)
    return or_(*options)


def _v1_conditions(f: OrderFilters, include_status: bool = True) -> list:
    where = []
    if include_status and f.status is not None:
        where.append(orders.c.status == f.status.value)
    if f.created_from:
        where.append(orders.c.created_at >= dt.datetime.combine(f.created_from, dt.time()))
    if f.created_to:
        where.append(
            orders.c.created_at < dt.datetime.combine(f.created_to + dt.timedelta(days=1), dt.time())
        )
    if f.search:
        where.append(_v1_search(f.search))
    if f.sku:
        where.append(
            exists(
                select(order_items.c.id)
                .join(skus, skus.c.id == order_items.c.sku_id)
                .where(order_items.c.order_id == orders.c.id, skus.c.code == f.sku)
            )
        )
    if f.min_total is not None:
        where.append(orders.c.total_amount >= f.min_total)
    if f.max_total is not None:
        where.append(orders.c.total_amount <= f.max_total)
    return where


def v1_bundle(
    db, filters: OrderFilters, *, sort: str, descending: bool, page: int, page_size: int
) -> tuple[dict, list, int]:
    where_all = _v1_conditions(filters, include_status=False)
    with db.read() as conn:
        counts = dict(
            conn.execute(
                select(orders.c.status, func.count()).where(*where_all).group_by(orders.c.status)
            ).all()
        )
    tabs = {s.value: counts.get(s.value, 0) for s in Status}
    tabs["all"] = sum(tabs.values())
    column = SORTABLE[sort]
    order_by = [column.desc(), orders.c.id.desc()] if descending else [column.asc(), orders.c.id.asc()]
    where = _v1_conditions(filters)
    with db.read() as conn:
        rows = conn.execute(
            select(*LIST_COLUMNS)
            .where(*where)
            .order_by(*order_by)
            .limit(page_size)
            .offset((page - 1) * page_size)
        ).all()
        total = conn.execute(select(func.count()).select_from(orders).where(*where)).scalar_one()
    return tabs, rows, total


# -- #3: the per-order ORM loop --------------------------------------------------------------
def orm_fulfill_loop(db, order_ids: list[int], actor: str) -> int:
    """Fulfil each order the naive way: load it, change it, add its event, commit."""
    done = 0
    with Session(db.engine) as session:
        for order_id in order_ids:
            order = session.get(Order, order_id)
            if order is None or order.status != "paid":
                session.rollback()
                continue
            now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
            order.status = "fulfilled"
            order.fulfilled_at = now
            order.updated_at = now
            session.add(
                OrderEvent(
                    order_id=order_id,
                    at=now,
                    actor=actor,
                    action="fulfill",
                    from_status="paid",
                    to_status="fulfilled",
                    note="",
                )
            )
            session.commit()
            done += 1
    return done


# -- #2: pandas ------------------------------------------------------------------------------
def pandas_export(db, destination, columns: list[str]) -> int:
    """pandas.read_sql of those orders columns (all orders, by id) + DataFrame.to_csv."""
    import pandas as pd

    query = select(*[orders.c[c] for c in columns]).order_by(orders.c.id)
    with db.engine.connect() as conn:
        frame = pd.read_sql(query, conn)
    frame.to_csv(destination, index=False)
    return len(frame)
