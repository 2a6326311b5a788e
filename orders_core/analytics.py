"""Analytics over the orders that match an OrderFilters, computed by DuckDB.

Only the columns the figures need leave the database: on SQLite through the ADBC
driver straight into Arrow (fast enough for a million orders; in a helper process,
see orders_core/adbc_helper.py), elsewhere through SQLAlchemy in batches that are
turned into Arrow record batches. Timestamps travel as whole seconds since the epoch
(UTC), so every column is a plain int64. DuckDB
then runs every aggregate on the Arrow tables in memory, and the results come back
as pandas DataFrames and small dataclasses, ready for a page or a CSV.

Definitions (also shown on the page):
- orders: every order matching the filters, whatever its status;
- gross revenue: the totals of the orders that were ever paid (paid_at is set:
  paid, fulfilled, returned, and canceled after payment);
- refunds: what was handed back (refunded_amount); net revenue = gross - refunds;
- refund rate: refunds as a share of gross revenue;
- average order value: gross revenue / paid orders.
Money stays in integer minor units of each currency; amounts in different
currencies are never added together.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal

import duckdb
import pandas as pd
import pyarrow as pa
from sqlalchemy import BigInteger, cast, extract, func, select

from . import adbc_helper
from .clock import utcnow
from .csv_cells import csv_bytes
from .db import Database, sqlite_parameter, sqlite_statement
from .id_ranges import RANGE_HI, RANGE_LO, range_size, range_statement
from .money import to_major
from .queries import OrderFilters
from .schema import order_items, orders, products, skus
from .staff import Actor, Permission, authorize
from .validation import whole_number

_log = logging.getLogger(__name__)
BATCH_ROWS = 50_000
MAX_STALE_DAYS = 3650
DEFAULT_STALE_DAYS = 3
UNFULFILLED_LIMIT = 500

ORDER_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("status", pa.string()),
        ("currency", pa.string()),
        ("total_amount", pa.int64()),
        ("refunded_amount", pa.int64()),
        ("created_s", pa.int64()),
        ("paid_s", pa.int64()),
        ("fulfilled_s", pa.int64()),
        ("canceled_s", pa.int64()),
        ("returned_s", pa.int64()),
    ]
)
ITEM_SCHEMA = pa.schema(
    [
        ("order_id", pa.int64()),
        ("sku_id", pa.int64()),
        ("quantity", pa.int64()),
        ("amount", pa.int64()),
    ]
)
SKU_SCHEMA = pa.schema(
    [
        ("sku_id", pa.int64()),
        ("sku", pa.string()),
        ("name", pa.string()),
        ("product", pa.string()),
    ]
)

STATUS_ORDER = ("created", "paid", "fulfilled", "canceled", "returned")
FUNNEL_STAGES = ("Placed", "Paid", "Fulfilled", "Kept (not returned)")


@dataclasses.dataclass(frozen=True)
class FulfillmentTime:
    """Time from payment to fulfilment, over the orders that have both."""

    orders: int
    median_hours: float | None
    p90_hours: float | None


@dataclasses.dataclass(frozen=True)
class AnalyticsReport:
    filters: OrderFilters
    stale_days: int
    generated_at: dt.datetime
    orders: int
    # One row per currency: currency, orders, paid_orders, refunded_orders, gross,
    # refunds, net, refund_rate (0..1 or NaN), average_order_value (minor units).
    tiles: pd.DataFrame
    # day (date, UTC), status, currency, orders, revenue (gross of the orders paid).
    daily: pd.DataFrame
    # status, orders, share (0..1).
    statuses: pd.DataFrame
    # stage, orders, share_of_placed, share_of_previous.
    funnel: pd.DataFrame
    # sku, name, product, currency, units, orders, revenue (paid orders only).
    top_skus: pd.DataFrame
    fulfillment: FulfillmentTime
    # Paid, not fulfilled, paid at least stale_days ago; oldest first, at most
    # UNFULFILLED_LIMIT rows: number, customer_name, customer_email, currency,
    # total_amount, paid_at, days_waiting.
    unfulfilled: pd.DataFrame
    unfulfilled_total: int

    @property
    def empty(self) -> bool:
        return self.orders == 0


# -- loading -----------------------------------------------------------------------


def _epoch(column, db: Database):
    """Whole seconds since 1970-01-01 UTC (timestamps are stored as naive UTC)."""
    if db.is_sqlite:
        return func.unixepoch(column)
    return cast(func.floor(extract("epoch", column)), BigInteger)


def orders_query(db: Database, filters: OrderFilters):
    return select(
        orders.c.id,
        orders.c.status,
        orders.c.currency,
        orders.c.total_amount,
        orders.c.refunded_amount,
        _epoch(orders.c.created_at, db).label("created_s"),
        _epoch(orders.c.paid_at, db).label("paid_s"),
        _epoch(orders.c.fulfilled_at, db).label("fulfilled_s"),
        _epoch(orders.c.canceled_at, db).label("canceled_s"),
        _epoch(orders.c.returned_at, db).label("returned_s"),
    ).where(*filters.conditions(dialect=db.engine.dialect.name))


def items_query(filters: OrderFilters, dialect: str | None = None, *, ranged: bool = False):
    """The matching orders' items; `ranged`: of the orders RANGE_LO < id <= RANGE_HI only."""
    query = select(order_items.c.order_id, order_items.c.sku_id, order_items.c.quantity, order_items.c.amount)
    conditions = filters.conditions(dialect=dialect)
    if ranged:
        query = query.where(order_items.c.order_id > RANGE_LO, order_items.c.order_id <= RANGE_HI)
        if conditions:
            conditions += [orders.c.id > RANGE_LO, orders.c.id <= RANGE_HI]
    if conditions:
        query = query.where(order_items.c.order_id.in_(select(orders.c.id).where(*conditions)))
    return query


def skus_query():
    return select(
        skus.c.id.label("sku_id"), skus.c.code.label("sku"), skus.c.name, products.c.name.label("product")
    ).join(products, products.c.id == skus.c.product_id)


def load_orders(db: Database, filters: OrderFilters) -> pa.Table:
    """The matching orders, only the columns analytics needs, as Arrow."""
    query = orders_query(db, filters)
    ranged = query.where(orders.c.id > RANGE_LO, orders.c.id <= RANGE_HI)
    return fetch_arrow(db, query, ORDER_SCHEMA, ranged=ranged, filtered=_has_filters(db, filters))


def load_items(db: Database, filters: OrderFilters) -> pa.Table:
    dialect = db.engine.dialect.name
    query, ranged = items_query(filters, dialect), items_query(filters, dialect, ranged=True)
    return fetch_arrow(db, query, ITEM_SCHEMA, ranged=ranged, filtered=_has_filters(db, filters))


def _has_filters(db: Database, filters: OrderFilters) -> bool:
    return bool(filters.conditions(dialect=db.engine.dialect.name))


def fetch_arrow(db: Database, query, schema: pa.Schema, *, ranged=None, filtered: bool = False) -> pa.Table:
    """Run a SQLAlchemy select and return its rows as an Arrow table of `schema`.
    `ranged`, the same select limited to the orders RANGE_LO < id <= RANGE_HI, lets
    ADBC read it range by range, each a short read of its own (orders_core/id_ranges.py;
    `filtered`: the select has filters, read in fewer, larger ranges)."""
    path = db.sqlite_file  # an in-memory database is only visible to its own connection
    if path is not None:
        return _fetch_adbc_sqlite(db, path, query, schema, ranged, filtered)
    return _fetch_batches(db, query, schema)


def _fetch_adbc_sqlite(
    db: Database, path: str, query, schema: pa.Schema, ranged=None, filtered: bool = False
) -> pa.Table:
    spans = None
    if ranged is None:
        sql, parameters = sqlite_statement(db, query)
    else:  # up to the highest order id now (orders placed from now on are not read)
        with db.read() as conn:
            high = conn.execute(select(func.max(orders.c.id))).scalar_one() or 0
        sql, parameters, slots = range_statement(db.engine.dialect, ranged, sqlite_parameter)
        size = range_size(0, int(high), filtered=filtered)
        spans = {"slots": slots, "low": 0, "high": int(high), "size": size}
    try:
        table = adbc_helper.read_arrow(path, sql, parameters, spans)
    except adbc_helper.HelperUnavailable as problem:
        _log.warning("Reading through SQLAlchemy instead of ADBC: %s", problem)
        return _fetch_batches(db, query, schema)  # slower, same rows
    table = table.rename_columns(schema.names)
    return table.cast(schema)


def _fetch_batches(db: Database, query, schema: pa.Schema) -> pa.Table:
    batches = []
    with db.read() as conn:
        result = conn.execution_options(stream_results=True, max_row_buffer=BATCH_ROWS).execute(query)
        for rows in result.partitions(BATCH_ROWS):
            columns = list(zip(*rows)) if rows else [()] * len(schema)
            batches.append(
                pa.record_batch(
                    [pa.array(list(values), type=field.type) for values, field in zip(columns, schema)],
                    schema=schema,
                )
            )
    return pa.Table.from_batches(batches, schema=schema)


# -- computing ----------------------------------------------------------------------


def parse_stale_days(value) -> int:
    if value in (None, ""):
        return DEFAULT_STALE_DAYS
    return whole_number(value, "Days", minimum=0, maximum=MAX_STALE_DAYS)


def build_report(
    db: Database,
    filters: OrderFilters,
    *,
    actor: Actor,
    stale_days=DEFAULT_STALE_DAYS,
    top: int = 10,
    now: dt.datetime | None = None,
    unfulfilled_limit: int = UNFULFILLED_LIMIT,
) -> AnalyticsReport:
    """Every figure of the analytics page for the orders matching `filters`."""
    authorize(db, actor, Permission.VIEW)
    stale_days = parse_stale_days(stale_days)
    top = whole_number(top, "Top", minimum=1, maximum=1000)
    now = now or utcnow()
    order_table = load_orders(db, filters)
    item_table = load_items(db, filters)
    sku_table = fetch_arrow(db, skus_query(), SKU_SCHEMA)
    now_s = int((now - dt.datetime(1970, 1, 1)).total_seconds())

    with duckdb.connect() as con:
        con.register("o", order_table)
        con.register("i", item_table)
        con.register("s", sku_table)
        total = con.execute("SELECT count(*) FROM o").fetchone()[0]
        tiles = _tiles(con)
        daily = _daily(con)
        statuses = _statuses(con, total)
        funnel = _funnel(con)
        top_skus = _top_skus(con, top)
        fulfillment = _fulfillment(con)
        cutoff = now_s - stale_days * 86400
        stale_total, stale_ids = _stale(con, cutoff, unfulfilled_limit)
    return AnalyticsReport(
        filters=filters,
        stale_days=stale_days,
        generated_at=now,
        orders=int(total),
        tiles=tiles,
        daily=daily,
        statuses=statuses,
        funnel=funnel,
        top_skus=top_skus,
        fulfillment=fulfillment,
        unfulfilled=_unfulfilled_rows(db, stale_ids, now),
        unfulfilled_total=stale_total,
    )


def _tiles(con) -> pd.DataFrame:
    frame = con.execute("""
        SELECT currency,
               count(*)::BIGINT AS orders,
               count(paid_s)::BIGINT AS paid_orders,
               count(*) FILTER (WHERE refunded_amount > 0)::BIGINT AS refunded_orders,
               coalesce(sum(total_amount) FILTER (WHERE paid_s IS NOT NULL), 0)::BIGINT AS gross,
               coalesce(sum(refunded_amount), 0)::BIGINT AS refunds
        FROM o GROUP BY currency ORDER BY gross DESC, orders DESC, currency
    """).df()
    frame["net"] = (frame["gross"] - frame["refunds"]).astype("int64")
    gross = frame["gross"].where(frame["gross"] > 0)
    frame["refund_rate"] = (frame["refunds"] / gross).astype("float64")
    paid = frame["paid_orders"].where(frame["paid_orders"] > 0)
    frame["average_order_value"] = (frame["gross"] / paid).round().astype("Int64")
    return frame[
        [
            "currency",
            "orders",
            "paid_orders",
            "refunded_orders",
            "gross",
            "refunds",
            "net",
            "refund_rate",
            "average_order_value",
        ]
    ]


def _daily(con) -> pd.DataFrame:
    frame = con.execute("""
        SELECT CAST(make_timestamp(created_s * 1000000) AS DATE) AS day, status, currency,
               count(*)::BIGINT AS orders,
               coalesce(sum(total_amount) FILTER (WHERE paid_s IS NOT NULL), 0)::BIGINT AS revenue
        FROM o GROUP BY ALL ORDER BY day, status, currency
    """).df()
    frame["day"] = pd.to_datetime(frame["day"])
    return frame


def _statuses(con, total: int) -> pd.DataFrame:
    counts = dict(con.execute("SELECT status, count(*) FROM o GROUP BY status").fetchall())
    known = [s for s in STATUS_ORDER] + sorted(set(counts) - set(STATUS_ORDER))
    rows = [
        {"status": s, "orders": int(counts.get(s, 0)), "share": (counts.get(s, 0) / total) if total else 0.0}
        for s in known
    ]
    return pd.DataFrame(rows, columns=["status", "orders", "share"]).astype(
        {"orders": "int64", "share": "float64"}
    )


def _funnel(con) -> pd.DataFrame:
    placed, paid, fulfilled, kept = con.execute("""
        SELECT count(*), count(paid_s), count(fulfilled_s),
               count(*) FILTER (WHERE fulfilled_s IS NOT NULL AND returned_s IS NULL)
        FROM o
    """).fetchone()
    values = [placed, paid, fulfilled, kept]
    rows = []
    for index, (stage, value) in enumerate(zip(FUNNEL_STAGES, values)):
        previous = values[index - 1] if index else placed
        rows.append(
            {
                "stage": stage,
                "orders": int(value),
                "share_of_placed": value / placed if placed else 0.0,
                "share_of_previous": value / previous if previous else 0.0,
            }
        )
    return pd.DataFrame(rows, columns=["stage", "orders", "share_of_placed", "share_of_previous"])


def _top_skus(con, top: int) -> pd.DataFrame:
    return con.execute(
        """
        SELECT coalesce(s.sku, '#' || i.sku_id::VARCHAR) AS sku,
               coalesce(s.name, '') AS name, coalesce(s.product, '') AS product,
               o.currency,
               sum(i.quantity)::BIGINT AS units,
               count(DISTINCT i.order_id)::BIGINT AS orders,
               coalesce(sum(i.amount) FILTER (WHERE o.paid_s IS NOT NULL), 0)::BIGINT AS revenue
        FROM i JOIN o ON o.id = i.order_id LEFT JOIN s ON s.sku_id = i.sku_id
        GROUP BY ALL
        ORDER BY units DESC, revenue DESC, sku
        LIMIT ?
    """,
        [top],
    ).df()


def _fulfillment(con) -> FulfillmentTime:
    count, median, p90 = con.execute("""
        SELECT count(*), median(fulfilled_s - paid_s) / 3600.0,
               quantile_cont(fulfilled_s - paid_s, 0.9) / 3600.0
        FROM o WHERE paid_s IS NOT NULL AND fulfilled_s IS NOT NULL
    """).fetchone()
    return FulfillmentTime(
        int(count), None if median is None else float(median), None if p90 is None else float(p90)
    )


def _stale(con, cutoff: int, limit: int) -> tuple[int, list[int]]:
    where = "status = 'paid' AND fulfilled_s IS NULL AND paid_s IS NOT NULL AND paid_s <= ?"
    total = con.execute(f"SELECT count(*) FROM o WHERE {where}", [cutoff]).fetchone()[0]
    ids = [
        r[0]
        for r in con.execute(
            f"SELECT id FROM o WHERE {where} ORDER BY paid_s, id LIMIT ?", [cutoff, limit]
        ).fetchall()
    ]
    return int(total), ids


UNFULFILLED_COLUMNS = [
    "number",
    "customer_name",
    "customer_email",
    "currency",
    "total_amount",
    "paid_at",
    "days_waiting",
]


def _unfulfilled_rows(db: Database, ids: Iterable[int], now: dt.datetime) -> pd.DataFrame:
    ids = list(ids)
    rows = []
    if ids:
        with db.read() as conn:
            found = conn.execute(
                select(
                    orders.c.id,
                    orders.c.number,
                    orders.c.customer_name,
                    orders.c.customer_email,
                    orders.c.currency,
                    orders.c.total_amount,
                    orders.c.paid_at,
                ).where(orders.c.id.in_(ids))
            ).all()
        position = {order_id: index for index, order_id in enumerate(ids)}
        for row in sorted(found, key=lambda r: position[r.id]):
            rows.append(
                {
                    "number": row.number,
                    "customer_name": row.customer_name,
                    "customer_email": row.customer_email,
                    "currency": row.currency,
                    "total_amount": row.total_amount,
                    "paid_at": row.paid_at,
                    "days_waiting": round((now - row.paid_at).total_seconds() / 86400, 1),
                }
            )
    frame = pd.DataFrame(rows, columns=UNFULFILLED_COLUMNS)
    return frame.astype({"total_amount": "int64", "days_waiting": "float64"})


# -- CSV ---------------------------------------------------------------------------------


def report_csv(db: Database, frame: pd.DataFrame, *, actor: Actor) -> bytes:
    """One of the report's tables as a CSV download: an export, so EXPORT is asked.
    Figures are rounded as people read them (see `rounded_for_csv`)."""
    authorize(db, actor, Permission.EXPORT)
    return csv_bytes(rounded_for_csv(frame))


RATE_COLUMNS = ("refund_rate", "share", "share_of_placed", "share_of_previous")  # 0..1


def rounded_for_csv(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy for a CSV file: a rate (0..1) becomes a percentage with two decimals in a
    column named `<rate>_percent` (0.20606289 -> "20.61"); any other fractional number
    is rounded to two decimals, half up. Counts and text are kept as they are."""
    out = frame.copy()
    for column in list(out.columns):
        values = out[column]
        if not pd.api.types.is_float_dtype(values):
            continue
        if column in RATE_COLUMNS:
            out[column] = [None if pd.isna(v) else _two_places(v * 100) for v in values]
            out = out.rename(columns={column: f"{column}_percent"})
        else:
            out[column] = [None if pd.isna(v) else _two_places(v) for v in values]
    return out


def _two_places(value: float) -> str:
    return str(Decimal(repr(float(value))).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def major_units(
    frame: pd.DataFrame, columns: Iterable[str], *, currency_column: str = "currency"
) -> pd.DataFrame:
    """A copy with the money `columns` turned from minor units into exact decimal text
    in each row's currency (1999 usd -> "19.99"), for CSV files."""
    out = frame.copy()
    for column in columns:
        out[column] = [
            None if pd.isna(amount) else str(to_major(_whole(amount), currency))
            for amount, currency in zip(frame[column], frame[currency_column])
        ]
    return out


def _whole(amount) -> int:
    """Minor units from a computed figure (an average is fractional): rounded half up."""
    return int(Decimal(repr(float(amount))).quantize(Decimal(1), rounding=ROUND_HALF_UP))


__all__ = [
    "AnalyticsReport",
    "FulfillmentTime",
    "build_report",
    "load_orders",
    "load_items",
    "fetch_arrow",
    "parse_stale_days",
    "report_csv",
    "major_units",
    "rounded_for_csv",
    "DEFAULT_STALE_DAYS",
    "MAX_STALE_DAYS",
]
