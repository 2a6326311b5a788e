"""The engine of the orders CSV export (orders_core/export.py is the API and explains
the file): the selected orders and their items read in ranges of order ids, each range
joined (vectorised) and formatted and written by DuckDB into a part of the file, by a
few worker threads at once; the parts are put together in id order.

No SQLAlchemy here, and nothing imported that the export does not need: on SQLite
this module runs in the ADBC helper process (orders_core/adbc_helper.py, `run_job`),
because the SQLite inside the ADBC driver and the one inside Python's sqlite3 module
must never open the same database file in one process.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import Protocol

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
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Worker threads of an export (each reads, joins and writes whole ranges).
EXPORT_WORKERS = max(1, int(os.environ.get("ORDERS_EXPORT_WORKERS", "2") or 2))

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


# -- reading: ranges of order ids, each one short read transaction ----------------------------
# A RangeReader is one worker's connection. read(lo, hi) returns the orders with
# lo < id <= hi (ORDER_SOURCE batches, by id) and their items (ITEM_SOURCE batches, by
# order id and item id), both read in one read transaction that ends before it
# returns: no read holds the SQLite WAL (or a PostgreSQL snapshot) for the length of
# the export, only for one range's. Items are written with their order in one
# transaction and never change, so each order read finds all its items.
class RangeReader(Protocol):
    def read(self, lo: int, hi: int) -> tuple[list[pa.RecordBatch], list[pa.RecordBatch]]: ...

    def close(self) -> None: ...


# A statement of a range: (sql, params, slots), the range's bounds going into params at
# slots = {"lo": [index, ...], "hi": [index, ...]}.
RangeStatement = tuple[str, list, dict]


def bind_range(params, slots: dict, lo: int, hi: int):
    """`params` (a list, or a dict by name) with the range's bounds at `slots`."""
    values = dict(params) if isinstance(params, dict) else list(params)
    for key in slots.get("lo", ()):
        values[key] = lo
    for key in slots.get("hi", ()):
        values[key] = hi
    return values


def conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """The batch with the stream's names and types. (SQLite has no column types: ADBC
    guesses them from the values.)"""
    if batch.schema.equals(schema):
        return batch
    return pa.RecordBatch.from_arrays(
        [column.cast(field.type) for column, field in zip(batch.columns, schema)], schema=schema
    )


class AdbcRanges:
    """A RangeReader over the ADBC connection `conn` (SQLite's or PostgreSQL's): each
    range's orders, then its items, in one read transaction that a rollback ends."""

    def __init__(self, conn, orders: RangeStatement, items: RangeStatement):
        self._statements = ((orders, ORDER_SOURCE), (items, ITEM_SOURCE))
        self._conn = conn
        self._cur = conn.cursor()

    def read(self, lo: int, hi: int):
        try:
            found = []
            for (sql, params, slots), schema in self._statements:
                self._cur.execute(sql, bind_range(params, slots, lo, hi))
                reader = self._cur.fetch_record_batch()
                try:
                    found.append([conform(batch, schema) for batch in reader if batch.num_rows])
                finally:
                    reader.close()
            return found[0], found[1]
        finally:
            self._conn.rollback()  # the read ends here

    def close(self) -> None:
        try:
            self._cur.close()
        finally:
            self._conn.close()


class SqliteRanges(AdbcRanges):
    """A RangeReader over the SQLite file `path` through ADBC, straight into Arrow."""

    def __init__(self, path: str, orders: RangeStatement, items: RangeStatement, batch_rows: int):
        import adbc_driver_sqlite
        import adbc_driver_sqlite.dbapi

        # autocommit off: the driver's deferred BEGIN takes no snapshot until the first
        # read, and each rollback in read() ends the range's read transaction.
        super().__init__(adbc_driver_sqlite.dbapi.connect(path), orders, items)
        self._cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        self._cur.fetchall()
        self._cur.adbc_statement.set_options(
            **{adbc_driver_sqlite.StatementOptions.BATCH_ROWS.value: str(batch_rows)}
        )
        self._conn.rollback()


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
COPY_OPTIONS = "FORMAT csv, DELIMITER ',', QUOTE '\"', ESCAPE '\"', NULLSTR '', NEW_LINE '\r\n'"


def join_range(order_batches: list[pa.RecordBatch], item_batches: list[pa.RecordBatch]) -> pa.Table:
    """One range's orders with their items' columns (EXPORT_SOURCE)."""
    batches = list(with_items([b for b in order_batches if b.num_rows], item_batches))
    return pa.Table.from_batches(batches, schema=EXPORT_SOURCE)


def ranges(low: int, high: int, size: int) -> list[tuple[int, int]]:
    """(lo, hi] ranges of `size` ids covering low < id <= high; at least one."""
    size = max(1, int(size))
    bounds = list(range(low, high, size)) or [low]
    return [(lo, max(lo, min(lo + size, high))) for lo in bounds]


def _append(target, part_path: str) -> None:
    """Part `part_path` onto the end of the open file `target`, in the kernel if it can."""
    with open(part_path, "rb") as part:
        size = os.fstat(part.fileno()).st_size
        copied = 0
        try:
            while copied < size:
                done = os.copy_file_range(part.fileno(), target.fileno(), size - copied)
                if done == 0:
                    break
                copied += done
        except OSError:
            pass
        if copied < size:  # another file system, or no copy_file_range: in Python
            part.seek(copied)
            target.seek(0, os.SEEK_END)
            while chunk := part.read(1 << 20):
                target.write(chunk)
    os.unlink(part_path)


def write_csv(
    open_reader: Callable[[], RangeReader],
    low: int,
    high: int,
    path: str,
    *,
    zero_decimal,
    three_decimal,
    range_ids: int = BATCH_ROWS,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write the CSV of the orders with low < id <= high (and their items) to `path`;
    the number of rows written. `open_reader()` gives each worker its RangeReader.
    A failure to read is raised as itself. `progress(rows)` is called with the rows
    written so far, after each range, in this thread (a failing callback stops nothing).

    Each of `workers` threads takes the next range of `range_ids` ids, reads it (one
    short read transaction), joins its items, and has its own one-thread DuckDB format
    and write it into a part file; this thread appends the parts to the file in range
    order. The workers overlap on every core (ADBC, libpq and DuckDB release the GIL),
    and the file keeps order id order without a sort: each part is one range, written
    by one DuckDB thread in the order it was read."""
    import duckdb

    spans = ranges(low, high, range_ids)
    workers = max(1, min(int(workers or EXPORT_WORKERS), len(spans)))
    lock = threading.Condition()
    done: dict[int, tuple[str, int]] = {}
    state = {"next": 0, "error": None, "stop": False}
    ahead = threading.Semaphore(workers + 2)  # ranges claimed but not yet appended

    def work() -> None:
        reader = None
        con = None
        try:
            reader = open_reader()
            con = duckdb.connect(
                config={
                    "threads": 1,  # the parallelism is the workers'
                    "memory_limit": "512MB",
                    "temp_directory": os.path.join(tempfile.gettempdir(), "orders-export-duckdb"),
                    "preserve_insertion_order": True,
                }
            )
            for macro in _macros(zero_decimal, three_decimal):
                con.execute(macro)
            while True:
                while not ahead.acquire(timeout=0.1):
                    if state["stop"]:
                        return
                with lock:
                    index = state["next"]
                    if state["stop"] or index >= len(spans):
                        ahead.release()
                        return
                    state["next"] = index + 1
                table = join_range(*reader.read(*spans[index]))
                part = f"{path}.{index}"
                if table.num_rows or index == 0:  # the first part has the header
                    con.register("export_source", table)
                    header = "true" if index == 0 else "false"
                    con.execute(f"COPY ({QUERY}) TO {sql_text(part)} ({COPY_OPTIONS}, HEADER {header})")
                    con.unregister("export_source")
                with lock:
                    done[index] = (part if os.path.exists(part) else "", table.num_rows)
                    lock.notify_all()
        except BaseException as error:  # noqa: BLE001 - raised again in the writing thread
            with lock:
                if state["error"] is None:
                    state["error"] = error
                state["stop"] = True
                lock.notify_all()
        finally:
            if con is not None:
                con.close()
            if reader is not None:
                reader.close()

    threads = [threading.Thread(target=work, name=f"orders-export-{n}", daemon=True) for n in range(workers)]
    for thread in threads:
        thread.start()
    rows = 0
    try:
        with open(path, "wb") as target:
            for index in range(len(spans)):
                with lock:
                    while index not in done and state["error"] is None:
                        lock.wait(0.5)
                    if state["error"] is not None:
                        raise state["error"]
                    part, count = done.pop(index)
                if part:
                    _append(target, part)
                ahead.release()
                rows += count
                if progress is not None:
                    try:
                        progress(rows)
                    except Exception:  # noqa: BLE001, S110 - progress is a report, never the export's failure
                        pass
        return rows
    finally:
        with lock:
            state["stop"] = True
        for thread in threads:
            thread.join()
        for index in range(len(spans)):  # parts of a failed export
            try:
                os.unlink(f"{path}.{index}")
            except OSError:
                pass


# -- an export from SQLite, in the ADBC helper process ----------------------------------------
def run_job(job: dict, progress: Callable[[int], None] | None = None) -> dict:
    """One SQLite export described by `job` (see export.py); {"rows": N} or {"error": ...}."""
    batch_rows = int(job.get("batch_rows") or BATCH_ROWS)

    def open_reader() -> SqliteRanges:
        return SqliteRanges(job["database"], tuple(job["orders"]), tuple(job["items"]), batch_rows)

    try:
        rows = write_csv(
            open_reader,
            int(job["low"]),
            int(job["high"]),
            job["output"],
            zero_decimal=job["zero_decimal"],
            three_decimal=job["three_decimal"],
            range_ids=int(job.get("range_ids") or batch_rows),
            workers=job.get("workers"),
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
