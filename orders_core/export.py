"""The CSV export of orders: database → Arrow → DuckDB → CSV file.

    export_orders(db, path, actor=actor, filters=OrderFilters(...))  # or order_ids=[...], or job_id=N

The file
--------
One row per order, in order id order, with these columns:

    order_number, created_at, status, customer_email, customer_name, sku_codes,
    product_names, quantities, total, currency, paid_at, fulfilled_at, canceled_at,
    returned_at, refunded, shipping_address

- UTF-8 *without* a byte order mark, CRLF line ends, comma separated, RFC 4180
  quoting: a field with a comma, a double quote, CR or LF is quoted and its quotes
  doubled (DuckDB quotes a few harmless others too, which every CSV reader accepts).
  Text is written as stored: a name with a line break keeps it, inside its quotes.
  No BOM because the file is also read by programs, and a BOM turns the first header
  into "\\ufefforder_number" for any reader that does not expect one. Excel: open it
  with Data → From Text/CSV (which reads UTF-8); LibreOffice, Google Sheets, pandas
  and Python's csv module read it as it is.
- total and refunded are numbers in major units, exact: 19.99 for 1999 usd, 1200 for
  1200 jpy, 1.500 for 1500 kwd (the places are orders_core.money.exponent's).
- Times are UTC in ISO 8601 to the second, 2026-11-26T23:21:14Z; empty when not set.
- An order's items: sku_codes, product_names and quantities, each joined with "; " in
  item order. shipping_address: the address as the order page writes it, by the
  country's convention (orders_core/addresses.py: "Chicago, IL 60614" in the US, the
  town then the postcode in the UK), its lines joined with ", ", skipping empty
  parts; empty for an order not shipped.
- A missing or empty value is an empty cell.
- Formula injection (OWASP "CSV Injection"): every text cell is spreadsheet-safe as
  orders_core/csv_cells.py defines it (a text cell that starts with =, +, -, @, a
  tab, a carriage return or a single quote gets a single quote in front). total and
  refunded are numbers and times are made from numbers: those are never escaped.

How rows reach DuckDB
---------------------
DuckDB cannot read SQLite or PostgreSQL here (its extensions would be downloaded at
run time), so the rows come from the database driver as Arrow record batches. The
export reads in ranges of order ids (65,536 ids a range, a filtered selection in at
most four: orders_core/id_ranges.py):
each range's selected orders ordered by id and their items ordered by order id and
item id, both in one short read transaction. orders_core/export_engine.py joins the
range's orders with their items (vectorised numpy / pyarrow: both are sorted by
order id), which measured far cheaper than GROUP_CONCAT in SQLite or a string_agg,
hash join and sort in DuckDB, and a one-thread DuckDB query does all the formatting
and escaping and writes the range as a part of the file with COPY ... TO. Two worker
threads (ORDERS_EXPORT_WORKERS) each take the next range, so reading, joining and
writing use both cores; the parts are appended to the file in range order, so the
file is in order id order without a sort. A few ranges are in flight, never the
whole result.

- SQLite: ADBC (adbc_driver_sqlite), 64 Ki rows a batch, straight into Arrow, in
  orders_core/adbc_helper.py's helper process (which says why ADBC must not run in
  this one); the whole export runs there and reports back.
- PostgreSQL: the ADBC PostgreSQL driver (adbc_driver_postgresql), which reads with
  COPY (FORMAT binary) straight into Arrow, in this process (no Python row objects).
  ORDERS_EXPORT_POSTGRES_READER=copy uses the earlier way instead: COPY ... (FORMAT
  csv) through psycopg, parsed by pyarrow's CSV reader. Measured: bench/results/export-r13.md.

Consistency (what an export promises while orders change: orders_core/export_selection.py):
the selection is the orders with id up to a bound taken when the export was asked for
(a job) or began (a direct call). Each range is read in one read transaction, its
orders first: items are written with their order in one transaction and never change,
so each exported order has all its items. Each order is written once, as it stood
when its range was read; an order that changes meanwhile is written as before the
change if its range was read first, as after if not. No read lasts longer than one
range's, so a long export never keeps SQLite's WAL from being reset.

The file is written under a temporary name in the destination folder and renamed
into place when complete: a reader never sees half a file, and a failed export
leaves whatever file was there before.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from sqlalchemy import BigInteger, any_, bindparam, func, literal_column, select
from sqlalchemy.dialects.postgresql import ARRAY

from . import adbc_helper
from . import export_engine as engine
from .address_sql import address_one_line_sql
from .addresses import FIELDS
from .db import Database, sqlite_parameter
from .errors import ExportFailed, NotFound, ValidationError
from .export_selection import filters_from_json
from .id_ranges import RANGE_HI, RANGE_LO, range_size, range_statement
from .money import THREE_DECIMAL, ZERO_DECIMAL, exponent
from .queries import OrderFilters
from .schema import job_items, jobs, order_items, orders
from .staff import Actor, Permission, authorize

COLUMNS = engine.COLUMNS
ADDRESS_SEPARATOR = ", "
assert {exponent(c) for c in (*ZERO_DECIMAL, *THREE_DECIMAL, "usd")} == {0, 2, 3}


@dataclasses.dataclass(frozen=True)
class ExportResult:
    path: Path
    rows: int
    bytes: int
    seconds: float
    # SQLite: the peak memory (VmHWM) of the helper process that did the work, which
    # the caller's own peak does not include; None when the export ran in this process.
    helper_peak_rss_mb: float | None = None


def export_orders(
    db: Database,
    destination: Path,
    *,
    actor: Actor,
    filters: OrderFilters | None = None,
    order_ids: Sequence[int] | None = None,
    job_id: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> ExportResult:
    """Write the selected orders to `destination` as CSV (see the module docstring),
    replacing any file there once the new one is complete; creates the folder.
    `actor` is who the file is for (an export job's: whoever asked for it).

    Select with exactly one of: `filters` (as the order list; OrderFilters() is every
    order), `order_ids` (unknown ids are skipped, duplicates count once) or `job_id`
    (the orders of that export job: its job_items, or its filters and id bound).
    `progress(rows)` is told the rows written so far as the export goes."""
    authorize(db, actor, Permission.EXPORT)
    started = time.perf_counter()
    selection = _selection(db, filters, order_ids, job_id)
    destination = Path(destination)
    if destination.is_dir():
        raise ValidationError(f"{destination} is a folder; give the export a file name.")
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = destination.with_name(f".{destination.name}.{uuid.uuid4().hex[:12]}.part")
    helper_peak = None
    try:
        if db.is_sqlite:
            rows, helper_peak = _export_sqlite(db, selection, temporary, progress)
        elif db.is_postgres:
            rows = _export_postgres(db, selection, temporary, progress)
        else:
            raise ValidationError(
                f"The CSV export supports SQLite and PostgreSQL, not {db.engine.dialect.name}."
            )
        os.replace(temporary, destination)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return ExportResult(
        path=destination,
        rows=rows,
        bytes=destination.stat().st_size,
        seconds=round(time.perf_counter() - started, 3),
        helper_peak_rss_mb=helper_peak,
    )


# -- which orders ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Selection:
    """The orders to export: those with low < id <= high that meet `conditions(lo, hi)`
    (WHERE terms over orders, given the range's bind parameters; [] for every order)."""

    conditions: Callable[[object, object], list]
    low: int
    high: int
    # Whether conditions() are filters (a search, a SKU, a status...), which the database
    # evaluates in full for each range's statement: fewer ranges (id_ranges.range_size).
    filtered: bool = False


def _selection(db: Database, filters, order_ids, job_id) -> _Selection:
    given = [
        name
        for name, value in (("filters", filters), ("order_ids", order_ids), ("job_id", job_id))
        if value is not None
    ]
    if len(given) != 1:
        raise ValidationError(
            "Select the orders to export with exactly one of filters, "
            f"order_ids or job_id (got {', '.join(given) or 'none'})."
        )
    dialect = db.engine.dialect.name
    if filters is not None:
        if not isinstance(filters, OrderFilters):
            raise ValidationError("filters must be an OrderFilters.")
        with db.read() as conn:  # the bound: orders placed from now on are not in the file
            high = conn.execute(select(func.max(orders.c.id))).scalar_one() or 0
        return _filtered_selection(filters.conditions(dialect=dialect), int(high))
    if job_id is not None:
        if isinstance(job_id, bool) or not isinstance(job_id, int):
            raise ValidationError(f"job_id must be a whole number, not {job_id!r}.")
        with db.read() as conn:
            job = conn.execute(
                select(jobs.c.id, jobs.c.selection_filters, jobs.c.selection_max_id).where(
                    jobs.c.id == job_id
                )
            ).first()
            if job is None:
                raise NotFound(f"No job #{job_id}.")
            if job.selection_max_id is None:  # a listed selection: its job items' order ids
                mine = job_items.c.job_id == job_id
                low, high = conn.execute(
                    select(func.min(job_items.c.order_id), func.max(job_items.c.order_id)).where(mine)
                ).one()
        if job.selection_max_id is not None:  # filters + an id bound (orders_core/export_selection.py)
            where = filters_from_json(job.selection_filters).conditions(dialect=dialect)
            return _filtered_selection(where, int(job.selection_max_id))

        def listed(lo, hi) -> list:  # the range's part of the job's (job_id, order_id) index
            return [
                orders.c.id.in_(
                    select(job_items.c.order_id).where(
                        job_items.c.job_id == job_id, job_items.c.order_id > lo, job_items.c.order_id <= hi
                    )
                )
            ]

        return _Selection(listed, int(low or 1) - 1, int(high or 0))
    if isinstance(order_ids, (str, bytes)) or not hasattr(order_ids, "__iter__"):
        raise ValidationError("order_ids must be a sequence of order ids.")
    ids = []
    for value in order_ids:
        if isinstance(value, bool) or not hasattr(value, "__index__"):
            raise ValidationError(f"Order ids are whole numbers, not {value!r}.")
        ids.append(int(value))
    if db.is_postgres:

        def chosen(lo, hi) -> list:
            return [orders.c.id == any_(bindparam("export_ids", ids, type_=ARRAY(BigInteger)))]
    else:  # one JSON parameter however many ids (SQLite limits the number of parameters)

        def chosen(lo, hi) -> list:
            listed = func.json_each(bindparam("export_ids", json.dumps(ids))).table_valued("value")
            return [orders.c.id.in_(select(listed.c.value))]

    return _Selection(chosen, min(ids, default=1) - 1, max(ids, default=0))


def _filtered_selection(where: list, high: int) -> _Selection:
    """The orders with id <= high that meet the filters' WHERE terms `where`."""
    return _Selection(lambda lo, hi: list(where), 0, high, filtered=bool(where))


def _order_query(db: Database, selection: _Selection):
    """The orders of the range RANGE_LO < id <= RANGE_HI (export_engine.ORDER_SOURCE), by id."""
    o = orders
    empty = literal_column("''")
    if db.is_postgres:

        def text_time(column):
            return func.coalesce(func.to_char(column, literal_column("'YYYY-MM-DD HH24:MI:SS'")), empty)
    else:  # SQLAlchemy keeps SQLite times as text: "YYYY-MM-DD HH:MM:SS.ffffff"

        def text_time(column):
            return func.coalesce(column, empty)

    address = address_one_line_sql(
        {field: getattr(o.c, f"ship_{field}") for field in FIELDS}, separator=ADDRESS_SEPARATOR
    )
    return (
        select(
            o.c.id.label("id"),
            o.c.number.label("number"),
            text_time(o.c.created_at).label("created_at"),
            o.c.status.label("status"),
            o.c.customer_email.label("customer_email"),
            o.c.customer_name.label("customer_name"),
            o.c.total_amount.label("total_amount"),
            o.c.currency.label("currency"),
            text_time(o.c.paid_at).label("paid_at"),
            text_time(o.c.fulfilled_at).label("fulfilled_at"),
            text_time(o.c.canceled_at).label("canceled_at"),
            text_time(o.c.returned_at).label("returned_at"),
            func.coalesce(o.c.refunded_amount, 0).label("refunded_amount"),
            func.coalesce(address, empty).label("shipping_address"),
        )
        .where(o.c.id > RANGE_LO, o.c.id <= RANGE_HI, *selection.conditions(RANGE_LO, RANGE_HI))
        .order_by(o.c.id)
    )


def _item_query(selection: _Selection):
    """The items of the range's orders (export_engine.ITEM_SOURCE), by order id and item id."""
    i = order_items
    where = [i.c.order_id > RANGE_LO, i.c.order_id <= RANGE_HI]
    conditions = selection.conditions(RANGE_LO, RANGE_HI)
    if conditions:  # the range's selected orders, found again in the same read
        where.append(
            i.c.order_id.in_(
                select(orders.c.id).where(orders.c.id > RANGE_LO, orders.c.id <= RANGE_HI, *conditions)
            )
        )
    return (
        select(
            i.c.order_id.label("order_id"),
            i.c.sku_code.label("sku_code"),
            i.c.product_name.label("product_name"),
            i.c.quantity.label("quantity"),
        )
        .where(*where)
        .order_by(i.c.order_id, i.c.id)
    )


def _range_ids(selection: _Selection) -> int:
    """65,536 ids a range; fewer, larger ranges for a filter (id_ranges.range_size)."""
    return range_size(selection.low, selection.high, filtered=selection.filtered, size=engine.BATCH_ROWS)


def _export_settings(selection: _Selection) -> dict:
    return {
        "low": selection.low,
        "high": selection.high,
        "zero_decimal": sorted(ZERO_DECIMAL),
        "three_decimal": sorted(THREE_DECIMAL),
        "range_ids": _range_ids(selection),
        "workers": engine.EXPORT_WORKERS,
    }


# -- SQLite: in a helper process ------------------------------------------------------------------
def _export_sqlite(
    db: Database, selection: _Selection, output: Path, progress=None
) -> tuple[int, float | None]:
    path = db.sqlite_file
    if path is None:
        raise ValidationError("The CSV export needs the SQLite database in a plain file.")
    dialect = db.engine.dialect
    job = {
        "database": path,
        "output": str(output),
        "orders": range_statement(dialect, _order_query(db, selection), sqlite_parameter),
        "items": range_statement(dialect, _item_query(selection), sqlite_parameter),
        "batch_rows": engine.BATCH_ROWS,
    } | _export_settings(selection)
    report = adbc_helper.run_export(job, progress)
    if "rows" in report:
        return int(report["rows"]), report.get("peak_rss_mb")
    raise ExportFailed(f"The export could not be written: {report.get('error', report)}")


# -- PostgreSQL: in this process -----------------------------------------------------------------
# How PostgreSQL rows reach Arrow: "adbc" (the ADBC driver's binary COPY, straight into
# Arrow) or "copy" (psycopg's COPY ... (FORMAT csv) parsed by pyarrow). Measured at 1M
# orders in bench/results/README.md: ADBC, the default.
POSTGRES_READER = os.environ.get("ORDERS_EXPORT_POSTGRES_READER", "adbc").strip().lower() or "adbc"


def _export_postgres(db: Database, selection: _Selection, output: Path, progress=None) -> int:
    statements = (_order_query(db, selection), _item_query(selection))
    if POSTGRES_READER == "copy":
        named = tuple(_postgres_statement(db, query) for query in statements)

        def open_reader() -> engine.RangeReader:
            return _CopyRanges(db, *named)
    else:
        dollar = type(db.engine.dialect)(paramstyle="numeric_dollar")
        positional = tuple(range_statement(dollar, query) for query in statements)

        def open_reader() -> engine.RangeReader:
            return _AdbcPostgresRanges(db, *positional)

    settings = _export_settings(selection)
    return engine.write_csv(
        open_reader,
        settings["low"],
        settings["high"],
        str(output),
        zero_decimal=ZERO_DECIMAL,
        three_decimal=THREE_DECIMAL,
        range_ids=settings["range_ids"],
        workers=settings["workers"],
        progress=progress,
    )


def _postgres_statement(db: Database, query) -> engine.RangeStatement:
    compiled = query.compile(dialect=db.engine.dialect, compile_kwargs={"render_postcompile": True})
    return str(compiled), dict(compiled.params), {"lo": [RANGE_LO.key], "hi": [RANGE_HI.key]}


def _adbc_url(db: Database) -> str:
    url = db.engine.url.set(drivername="postgresql", query={})
    return url.render_as_string(hide_password=False)


class _AdbcPostgresRanges(engine.AdbcRanges):
    """A RangeReader through the ADBC PostgreSQL driver, which reads with COPY (FORMAT
    binary) straight into Arrow record batches: no Python row objects. Each range is
    one transaction (READ COMMITTED: the items, read second, include every item of
    the orders read first)."""

    def __init__(self, db: Database, orders: engine.RangeStatement, items: engine.RangeStatement):
        import adbc_driver_postgresql.dbapi as adbc_postgres

        super().__init__(adbc_postgres.connect(_adbc_url(db)), orders, items)


class _CopyRanges:
    """A RangeReader through psycopg's COPY ... (FORMAT csv), parsed by pyarrow."""

    def __init__(self, db: Database, orders: engine.RangeStatement, items: engine.RangeStatement):
        self._statements = ((orders, engine.ORDER_SOURCE), (items, engine.ITEM_SOURCE))
        self._raw = db.engine.raw_connection()

    def read(self, lo: int, hi: int):
        conn = self._raw.driver_connection
        try:
            found = []
            for (sql, params, slots), schema in self._statements:
                found.append(_copy_batches(conn, sql, engine.bind_range(params, slots, lo, hi), schema))
            return found[0], found[1]
        finally:
            conn.rollback()

    def close(self) -> None:
        self._raw.close()


def _copy_batches(conn, sql: str, params: dict, schema) -> list:
    import pyarrow.csv as pacsv

    with conn.cursor() as cur, cur.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)", params) as copy:
        data = _CopyFile(copy)
        if data.at_end():
            return []  # no rows (pyarrow refuses an empty CSV)
        reader = pacsv.open_csv(
            data,
            read_options=pacsv.ReadOptions(column_names=schema.names, block_size=4 << 20, use_threads=False),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={field.name: field.type for field in schema},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        return [engine.conform(batch, schema) for batch in reader if batch.num_rows]


class _CopyFile:
    """The bytes of a psycopg COPY ... TO STDOUT as a readable file, for pyarrow."""

    closed = False

    def __init__(self, copy):
        self._copy = copy
        self._buffer = bytearray()
        self._done = False

    def readable(self) -> bool:
        return True

    def at_end(self) -> bool:
        """Whether there is nothing (left) to read."""
        if not self._buffer and not self._done:
            chunk = self._copy.read()
            if chunk:
                self._buffer += chunk
            else:
                self._done = True
        return self._done and not self._buffer

    def read(self, size: int = -1) -> bytes:
        while not self._done and (size < 0 or len(self._buffer) < size):
            chunk = self._copy.read()
            if not chunk:
                self._done = True
                break
            self._buffer += chunk
        if size < 0 or size >= len(self._buffer):
            data, self._buffer = bytes(self._buffer), bytearray()
        else:
            data = bytes(self._buffer[:size])
            del self._buffer[:size]
        return data

    def close(self) -> None:
        self.closed = True


__all__ = ["COLUMNS", "ExportFailed", "ExportResult", "export_orders"]
