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

How rows reach DuckDB (measured on a million orders; the figures are in the commit
that introduced this module)
---------------------------------------------------------------------------------
DuckDB cannot read SQLite or PostgreSQL here (its extensions would be downloaded at
run time), so the rows come from the database driver as Arrow record batches, in
two streams read by two threads: the selected orders ordered by id, and their items
ordered by order id and item id. orders_core/export_engine.py joins each batch of
orders with its items (vectorised numpy / pyarrow: both streams are sorted by order
id), which measured far cheaper than GROUP_CONCAT in SQLite or a string_agg, hash
join and sort in DuckDB, then runs one DuckDB query over the stream that does all
the formatting and escaping and writes the file with COPY ... TO. The stream keeps
its order, so nothing is sorted; a few batches are in flight, never the whole result.

- SQLite: ADBC (adbc_driver_sqlite), 64 Ki rows a batch, straight into Arrow, in
  orders_core/adbc_helper.py's helper process (which says why ADBC must not run in
  this one); the whole export runs there and reports back.
- PostgreSQL: the ADBC PostgreSQL driver (adbc_driver_postgresql), which reads with
  COPY (FORMAT binary) straight into Arrow, in this process (no Python row objects).
  ORDERS_EXPORT_POSTGRES_READER=copy uses the earlier way instead: COPY ... (FORMAT
  csv) through psycopg, parsed by pyarrow's CSV reader. Measured: bench/results/README.md.

Consistency: the orders stream has its snapshot before the items stream starts.
Items are written with their order in one transaction and never change, so each
exported order finds all its items; items of orders that arrived later are skipped.

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

from sqlalchemy import BigInteger, and_, any_, bindparam, func, literal_column, select
from sqlalchemy.dialects.postgresql import ARRAY

from . import adbc_helper
from . import export_engine as engine
from .address_sql import address_one_line_sql
from .addresses import FIELDS
from .db import Database, sqlite_statement
from .errors import ExportFailed, NotFound, ValidationError
from .export_selection import filters_from_json
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
    where = _selection(db, filters, order_ids, job_id)  # (over orders, over order_items)
    destination = Path(destination)
    if destination.is_dir():
        raise ValidationError(f"{destination} is a folder; give the export a file name.")
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = destination.with_name(f".{destination.name}.{uuid.uuid4().hex[:12]}.part")
    helper_peak = None
    try:
        if db.is_sqlite:
            rows, helper_peak = _export_sqlite(db, where, temporary, progress)
        elif db.is_postgres:
            rows = _export_postgres(db, where, temporary, progress)
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
def _selection(db: Database, filters, order_ids, job_id) -> tuple:
    """(WHERE over orders, WHERE over order_items); None: every row."""
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
    if filters is not None:
        if not isinstance(filters, OrderFilters):
            raise ValidationError("filters must be an OrderFilters.")
        return _filtered_selection(filters, None, dialect=db.engine.dialect.name)
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
        if job.selection_max_id is not None:  # filters + an id bound (orders_core/export_selection.py)
            return _filtered_selection(
                filters_from_json(job.selection_filters),
                int(job.selection_max_id),
                dialect=db.engine.dialect.name,
            )

        # Both straight from the job's (job_id, order_id) index, in order id order.
        def chosen(column):
            return column.in_(select(job_items.c.order_id).where(job_items.c.job_id == job_id))

        return chosen(orders.c.id), chosen(order_items.c.order_id)
    if isinstance(order_ids, (str, bytes)) or not hasattr(order_ids, "__iter__"):
        raise ValidationError("order_ids must be a sequence of order ids.")
    ids = []
    for value in order_ids:
        if isinstance(value, bool) or not hasattr(value, "__index__"):
            raise ValidationError(f"Order ids are whole numbers, not {value!r}.")
        ids.append(int(value))
    if db.is_postgres:

        def chosen(column):
            return column == any_(bindparam("export_ids", ids, type_=ARRAY(BigInteger)))
    else:  # one JSON parameter however many ids (SQLite limits the number of parameters)

        def chosen(column):
            listed = func.json_each(bindparam("export_ids", json.dumps(ids))).table_valued("value")
            return column.in_(select(listed.c.value))

    return chosen(orders.c.id), chosen(order_items.c.order_id)


def _filtered_selection(filters: OrderFilters, max_id: int | None, *, dialect: str) -> tuple:
    """(WHERE over orders, WHERE over order_items) of the orders matching `filters`,
    only those with id <= max_id when given (both ranges of a primary key or index);
    a search through `dialect`'s text index."""
    conditions = filters.conditions(dialect=dialect)
    if max_id is not None:
        conditions.append(orders.c.id <= max_id)
    if not conditions:
        return None, None
    if len(conditions) > (max_id is not None):
        items = order_items.c.order_id.in_(select(orders.c.id).where(*conditions))
    else:  # every order up to the bound: the items' own order_id range
        items = order_items.c.order_id <= max_id
    return and_(*conditions), items


def _order_query(db: Database, where):
    """The orders stream (export_engine.ORDER_SOURCE), ordered by id."""
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
    query = select(
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
    ).order_by(o.c.id)
    return query if where is None else query.where(where)


def _item_query(where):
    """The items stream (export_engine.ITEM_SOURCE), ordered by order id and item id."""
    i = order_items
    query = select(
        i.c.order_id.label("order_id"),
        i.c.sku_code.label("sku_code"),
        i.c.product_name.label("product_name"),
        i.c.quantity.label("quantity"),
    ).order_by(i.c.order_id, i.c.id)
    return query if where is None else query.where(where)


def _postgres_statement(db: Database, query) -> tuple[str, dict]:
    compiled = query.compile(dialect=db.engine.dialect, compile_kwargs={"render_postcompile": True})
    return str(compiled), dict(compiled.params)


# -- SQLite: in a helper process ------------------------------------------------------------------
def _export_sqlite(db: Database, where, output: Path, progress=None) -> tuple[int, float | None]:
    path = db.sqlite_file
    if path is None:
        raise ValidationError("The CSV export needs the SQLite database in a plain file.")
    orders_sql, orders_params = sqlite_statement(db, _order_query(db, where[0]))
    items_sql, items_params = sqlite_statement(db, _item_query(where[1]))
    job = {
        "database": path,
        "output": str(output),
        "orders_sql": orders_sql,
        "orders_params": orders_params,
        "items_sql": items_sql,
        "items_params": items_params,
        "zero_decimal": sorted(ZERO_DECIMAL),
        "three_decimal": sorted(THREE_DECIMAL),
        "batch_rows": engine.BATCH_ROWS,
    }
    report = adbc_helper.run_export(job, progress)
    if "rows" in report:
        return int(report["rows"]), report.get("peak_rss_mb")
    raise ExportFailed(f"The export could not be written: {report.get('error', report)}")


# -- PostgreSQL: in this process -----------------------------------------------------------------
# How PostgreSQL rows reach Arrow: "adbc" (the ADBC driver's binary COPY, straight into
# Arrow) or "copy" (psycopg's COPY ... (FORMAT csv) parsed by pyarrow). Measured at 1M
# orders in bench/results/README.md: ADBC, the default.
POSTGRES_READER = os.environ.get("ORDERS_EXPORT_POSTGRES_READER", "adbc").strip().lower() or "adbc"


def _export_postgres(db: Database, where, output: Path, progress=None) -> int:
    order_query, item_query = _order_query(db, where[0]), _item_query(where[1])
    if POSTGRES_READER == "copy":
        producers = (
            _postgres_producer(db, *_postgres_statement(db, order_query), engine.ORDER_SOURCE),
            _postgres_producer(db, *_postgres_statement(db, item_query), engine.ITEM_SOURCE),
        )
    else:
        producers = (
            _adbc_postgres_producer(db, *_dollar_statement(db, order_query), engine.ORDER_SOURCE),
            _adbc_postgres_producer(db, *_dollar_statement(db, item_query), engine.ITEM_SOURCE),
        )
    return engine.write_csv(
        *producers,
        str(output),
        zero_decimal=ZERO_DECIMAL,
        three_decimal=THREE_DECIMAL,
        progress=progress,
    )


def _postgres_producer(db: Database, sql: str, params: dict, schema) -> engine.Producer:
    import pyarrow.csv as pacsv

    def produce(put, started) -> None:
        raw = db.engine.raw_connection()
        try:
            conn = raw.driver_connection
            with conn.cursor() as cur, cur.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)", params) as copy:
                started()  # the statement runs: it has its snapshot
                data = _CopyFile(copy)
                if data.at_end():
                    return  # no rows (pyarrow refuses an empty CSV)
                reader = pacsv.open_csv(
                    data,
                    read_options=pacsv.ReadOptions(
                        column_names=schema.names, block_size=4 << 20, use_threads=False
                    ),
                    parse_options=pacsv.ParseOptions(newlines_in_values=True),
                    convert_options=pacsv.ConvertOptions(
                        column_types={field.name: field.type for field in schema},
                        strings_can_be_null=False,
                        quoted_strings_can_be_null=False,
                    ),
                )
                for batch in reader:
                    if batch.num_rows and not put(engine.conform(batch, schema)):
                        conn.cancel_safe()  # stop the server's COPY rather than read it all
                        break
            conn.rollback()
        finally:
            raw.close()

    return produce


def _dollar_statement(db: Database, query) -> tuple[str, list]:
    """The query as PostgreSQL's own $1, $2 ... text and its parameters in order (ADBC)."""
    dialect = type(db.engine.dialect)(paramstyle="numeric_dollar")
    compiled = query.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    order = compiled.positiontup or []
    return str(compiled), [compiled.params[name] for name in order]


def _adbc_url(db: Database) -> str:
    url = db.engine.url.set(drivername="postgresql", query={})
    return url.render_as_string(hide_password=False)


def _adbc_postgres_producer(db: Database, sql: str, params: list, schema) -> engine.Producer:
    """Rows of `sql` through the ADBC PostgreSQL driver, which reads them with COPY
    (FORMAT binary) straight into Arrow record batches: no Python row objects."""

    def produce(put, started) -> None:
        import adbc_driver_postgresql.dbapi as adbc_postgres

        with adbc_postgres.connect(_adbc_url(db)) as conn, conn.cursor() as cur:
            cur.execute(sql, params or None)
            started()  # the statement runs: it has its snapshot
            reader = cur.fetch_record_batch()
            try:
                for batch in reader:
                    if batch.num_rows and not put(engine.conform(batch, schema)):
                        break
            finally:
                reader.close()
            conn.rollback()

    return produce


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
