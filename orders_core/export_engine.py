"""The engine of the orders CSV export (orders_core/export.py is the API and explains
the file): two streams of Arrow record batches, the selected orders and their items,
joined batch by batch and written by one DuckDB query with COPY ... TO.

No SQLAlchemy here, and nothing imported that the export does not need: on SQLite
this module runs in the ADBC helper process (orders_core/adbc_helper.py, `run_job`),
because the SQLite inside the ADBC driver and the one inside Python's sqlite3 module
must never open the same database file in one process.
"""

from __future__ import annotations

import os
import queue
import tempfile
import threading
from collections.abc import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .csv_cells import spreadsheet_safe_sql

COLUMNS = (
    "order_number",
    "created_at",
    "status",
    "customer_email",
    "customer_name",
    "sku_codes",
    "product_names",
    "quantities",
    "total",
    "currency",
    "paid_at",
    "fulfilled_at",
    "canceled_at",
    "returned_at",
    "refunded",
    "shipping_address",
)
ITEM_SEPARATOR = "; "

BATCH_ROWS = 65_536
QUEUE_DEPTH = 3  # batches read ahead per stream
SQLITE_BUSY_TIMEOUT_MS = 30_000

# The two streams as the DuckDB query expects them. Times are text shaped like
# "2026-11-26 23:21:14[.ffffff]", "" when not set; no column is NULL.
ORDER_SOURCE = pa.schema(
    [
        ("id", pa.int64()),
        ("number", pa.string()),
        ("created_at", pa.string()),
        ("status", pa.string()),
        ("customer_email", pa.string()),
        ("customer_name", pa.string()),
        ("total_amount", pa.int64()),
        ("currency", pa.string()),
        ("paid_at", pa.string()),
        ("fulfilled_at", pa.string()),
        ("canceled_at", pa.string()),
        ("returned_at", pa.string()),
        ("refunded_amount", pa.int64()),
        ("shipping_address", pa.string()),
    ]
)
ITEM_SOURCE = pa.schema(
    [
        ("order_id", pa.int64()),
        ("sku_code", pa.string()),
        ("product_name", pa.string()),
        ("quantity", pa.int64()),
    ]
)
EXPORT_SOURCE = pa.schema(
    list(ORDER_SOURCE)
    + [
        pa.field("sku_codes", pa.string()),
        pa.field("product_names", pa.string()),
        pa.field("quantities", pa.string()),
    ]
)

# A producer reads one stream: produce(put, started) calls started() once its query
# holds its snapshot and put(batch) for each batch; put returns False when the
# export has stopped reading (the producer should stop too).
Producer = Callable[[Callable[[pa.RecordBatch], bool], Callable[[], None]], None]


# -- reading -----------------------------------------------------------------------------------
class Stream:
    """The batches of a producer run in a thread of its own, read a few ahead."""

    _END = object()

    def __init__(self, name: str, produce: Producer, *, after: Stream | None = None):
        self.started = threading.Event()
        self.error: BaseException | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUE_DEPTH)
        self._stop = threading.Event()
        self._produce = produce
        self._after = after
        self._thread = threading.Thread(target=self._run, name=f"orders-export-{name}", daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            if self._after is not None:  # this stream's snapshot must come after that one's
                while not self._after.started.wait(0.1):
                    if self._stop.is_set():
                        return
            if self._after is None or self._after.error is None:
                self._produce(self._put, self.started.set)
        except BaseException as error:  # noqa: BLE001 - raised again in the reading thread
            self.error = error
        finally:
            self.started.set()
            self._put(self._END)

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        while True:
            item = self._queue.get()
            if item is self._END:
                if self.error is not None:
                    raise self.error
                return
            yield item

    def close(self) -> None:
        """Stop reading (at most one more batch is read) and wait for the thread."""
        self._stop.set()
        self._thread.join()


def conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """The batch with the stream's names and types. (SQLite has no column types: ADBC
    guesses them from the values.)"""
    if batch.schema.equals(schema):
        return batch
    return pa.RecordBatch.from_arrays(
        [column.cast(field.type) for column, field in zip(batch.columns, schema)], schema=schema
    )


def sqlite_producer(
    path: str, sql: str, params: list, schema: pa.Schema, batch_rows: int = BATCH_ROWS
) -> Producer:
    """Rows of `sql` from the SQLite file `path` through ADBC, straight into Arrow."""

    def produce(put, started) -> None:
        import adbc_driver_sqlite
        import adbc_driver_sqlite.dbapi

        with adbc_driver_sqlite.dbapi.connect(path) as conn, conn.cursor() as cur:
            cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cur.fetchall()
            cur.adbc_statement.set_options(
                **{adbc_driver_sqlite.StatementOptions.BATCH_ROWS.value: str(batch_rows)}
            )
            cur.execute(sql, tuple(params))
            reader = cur.fetch_record_batch()
            try:
                for batch in reader:
                    started()  # rows have been read: the statement has its snapshot
                    if batch.num_rows and not put(conform(batch, schema)):
                        return
            finally:
                reader.close()
                conn.rollback()  # only ever read

    return produce


# -- joining each batch of orders with its items -------------------------------------------------
class ItemCursor:
    """The items stream, consumed in step with the orders (both sorted by order id)."""

    def __init__(self, batches):
        self._batches = iter(batches)
        self._held = ITEM_SOURCE.empty_table()
        self._exhausted = False

    def through(self, last_order_id: int) -> pa.Table:
        """Every item with order_id <= last_order_id not handed out before."""
        parts = [self._held]
        while not self._exhausted and (
            parts[-1].num_rows == 0 or parts[-1].column(0)[-1].as_py() <= last_order_id
        ):
            batch = next(self._batches, None)
            if batch is None:
                self._exhausted = True
            else:
                parts.append(pa.Table.from_batches([batch]))
        table = pa.concat_tables(parts).combine_chunks() if len(parts) > 1 else parts[0]
        cut = int(np.searchsorted(table.column(0).to_numpy(), last_order_id, side="right"))
        self._held = table.slice(cut)
        return table.slice(0, cut)


def with_items(order_batches, item_batches) -> Iterator[pa.RecordBatch]:
    """Each batch of orders with sku_codes, product_names and quantities: its items'
    values joined with "; " in item order ("" for an order without items)."""
    items = ItemCursor(item_batches)
    for batch in order_batches:
        ids = batch.column(0).to_numpy()
        taken = items.through(int(ids[-1]))
        item_order_ids = taken.column(0).to_numpy()
        start = np.searchsorted(item_order_ids, ids, side="left")
        end = np.searchsorted(item_order_ids, ids, side="right")
        lengths = end - start
        offsets = np.zeros(len(ids) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        # Leave out items of orders that are not in the batch (orders that arrived
        # after the orders stream took its snapshot).
        indices = (
            None
            if offsets[-1] == len(item_order_ids)
            else pa.array(np.repeat(start - offsets[:-1], lengths) + np.arange(offsets[-1]))
        )
        joined = []
        for name in ("sku_code", "product_name", "quantity"):
            values = taken.column(name).combine_chunks()
            if name == "quantity":
                values = pc.cast(values, pa.string())
            if indices is not None:
                values = values.take(indices)
            lists = pa.LargeListArray.from_arrays(pa.array(offsets, type=pa.int64()), values)
            joined.append(pc.binary_join(lists, ITEM_SEPARATOR))
        yield pa.RecordBatch.from_arrays(list(batch.columns) + joined, schema=EXPORT_SOURCE)


# -- writing: one DuckDB query ---------------------------------------------------------------------
def sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _macros(zero_decimal, three_decimal) -> tuple[str, ...]:
    places = {
        0: "amount::VARCHAR",  # exact: DECIMAL arithmetic, 1999 * 0.01 = 19.99
        2: "(amount::DECIMAL(18, 0) * 0.01)::VARCHAR",
        3: "(amount::DECIMAL(18, 0) * 0.001)::VARCHAR",
    }
    return (
        # A text cell, safe for spreadsheets: orders_core.csv_cells.
        f"CREATE TEMP MACRO csv_text(x) AS {spreadsheet_safe_sql('x')}",
        # The same, with NULL for no text: an empty cell rather than "".
        "CREATE TEMP MACRO csv_text_or_null(x) AS NULLIF(csv_text(x), '')",
        # Decimal places of a currency: orders_core.money.exponent.
        "CREATE TEMP MACRO currency_places(c) AS CASE "
        f"WHEN lower(c) IN ({', '.join(sql_text(c) for c in sorted(zero_decimal))}) THEN 0 "
        f"WHEN lower(c) IN ({', '.join(sql_text(c) for c in sorted(three_decimal))}) THEN 3 "
        "ELSE 2 END",
        # Minor units as an exact number in major units: (1999, 2) → 19.99.
        "CREATE TEMP MACRO major_units(amount, places) AS CASE places "
        + " ".join(f"WHEN {p} THEN {expression}" for p, expression in places.items())
        + " END",
        # "2026-11-26 23:21:14[.ffffff]" → "2026-11-26T23:21:14Z"; NULL for "".
        "CREATE TEMP MACRO utc_time(x) AS CASE WHEN x = '' THEN NULL "
        "ELSE concat(left(x, 10), 'T', substr(x, 12, 8), 'Z') END",
    )


# (expression over export_source, CSV column), in file order.
SELECT_LIST = (
    ("csv_text(number)", "order_number"),
    ("utc_time(created_at)", "created_at"),
    ("csv_text(status)", "status"),
    ("csv_text_or_null(customer_email)", "customer_email"),
    ("csv_text_or_null(customer_name)", "customer_name"),
    ("csv_text_or_null(sku_codes)", "sku_codes"),
    ("csv_text_or_null(product_names)", "product_names"),
    ("csv_text_or_null(quantities)", "quantities"),
    ("major_units(total_amount, currency_places(currency))", "total"),
    ("csv_text(currency)", "currency"),
    ("utc_time(paid_at)", "paid_at"),
    ("utc_time(fulfilled_at)", "fulfilled_at"),
    ("utc_time(canceled_at)", "canceled_at"),
    ("utc_time(returned_at)", "returned_at"),
    ("major_units(refunded_amount, currency_places(currency))", "refunded"),
    ("csv_text_or_null(shipping_address)", "shipping_address"),
)
assert tuple(name for _, name in SELECT_LIST) == COLUMNS
QUERY = (
    "SELECT "
    + ", ".join(f"{expression} AS {name}" for expression, name in SELECT_LIST)
    + " FROM export_source"
)
# RFC 4180 with CRLF line ends (a real CR LF inside the SQL string); NULL → empty cell.
COPY_OPTIONS = "FORMAT csv, HEADER true, DELIMITER ',', QUOTE '\"', ESCAPE '\"', NULLSTR '', NEW_LINE '\r\n'"


def write_csv(
    orders: Producer,
    items: Producer,
    path: str,
    *,
    zero_decimal,
    three_decimal,
    threads: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Read both streams, write the CSV to `path`; the number of rows written. A
    failure to read is raised as itself (not wrapped in DuckDB's error).
    `progress(rows)` is called with the rows handed to the writer so far, after each
    batch (from the joining thread; a failing callback stops nothing).

    Four threads overlap: reading orders, reading items, joining them, and DuckDB
    (which releases the GIL; the readers do too, inside ADBC or libpq)."""
    order_stream = Stream("orders", orders)
    item_stream = Stream("items", items, after=order_stream)

    def join(put, started) -> None:  # in a thread too, so DuckDB never waits for it
        started()
        rows = 0
        for batch in with_items(order_stream, item_stream):
            if not put(batch):
                return
            rows += batch.num_rows
            if progress is not None:
                try:
                    progress(rows)
                except Exception:  # noqa: BLE001, S110 - progress is a report, never the export's failure
                    pass

    joined = Stream("join", join)
    try:
        import duckdb  # imported while the streams already read

        con = duckdb.connect(
            config={
                # One thread: DuckDB scans an Arrow stream in parallel out of order even
                # with preserve_insertion_order (70-80 of 1M rows out of place with 2);
                # one keeps the file in order id order, and measured as fast on 2 cores.
                "threads": threads or 1,
                "memory_limit": "1GB",
                "temp_directory": os.path.join(tempfile.gettempdir(), "orders-export-duckdb"),
                "preserve_insertion_order": True,  # the rows stay in order id order
            }
        )
        try:
            for macro in _macros(zero_decimal, three_decimal):
                con.execute(macro)
            con.register("export_source", pa.RecordBatchReader.from_batches(EXPORT_SOURCE, joined))
            try:
                result = con.execute(f"COPY ({QUERY}) TO {sql_text(path)} ({COPY_OPTIONS})").fetchone()
            except duckdb.Error as error:
                failure = order_stream.error or item_stream.error or joined.error
                if failure is not None:
                    raise failure from error
                raise
            return int(result[0]) if result else 0
        finally:
            con.close()
    finally:
        joined.close()
        order_stream.close()
        item_stream.close()


# -- an export from SQLite, in the ADBC helper process ----------------------------------------
def run_job(job: dict, progress: Callable[[int], None] | None = None) -> dict:
    """One SQLite export described by `job` (see export.py); {"rows": N} or {"error": ...}."""
    batch_rows = int(job.get("batch_rows") or BATCH_ROWS)
    try:
        rows = write_csv(
            sqlite_producer(
                job["database"], job["orders_sql"], job["orders_params"], ORDER_SOURCE, batch_rows
            ),
            sqlite_producer(job["database"], job["items_sql"], job["items_params"], ITEM_SOURCE, batch_rows),
            job["output"],
            zero_decimal=job["zero_decimal"],
            three_decimal=job["three_decimal"],
            progress=progress,
        )
    except Exception as error:  # noqa: BLE001 - reported to the parent
        return {"error": f"{type(error).__name__}: {error}"}
    return {"rows": rows, "peak_rss_mb": _peak_rss_mb()}


def _peak_rss_mb() -> float | None:
    """This process's peak resident set size so far (Linux VmHWM), in MB."""
    try:
        with open("/proc/self/status") as f:
            kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration, ValueError):
        return None
    return round(kb / 1024, 1)
