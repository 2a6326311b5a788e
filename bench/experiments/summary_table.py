"""Experiment (not part of the harness): what a per-day, per-status, per-currency
summary table would gain the orders page's tab counts, and what keeping it costs.

    python -m bench.experiments.summary_table [--orders N]

Reads the cached benchmark database; the summary is a TEMP table (nothing is
written to the database). The write cost is measured on an in-memory copy of
100,000 orders' (id, status, created_at, currency) with and without an AFTER UPDATE
trigger keeping the summary, for a set-based status move of all of them."""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import time
from pathlib import Path

from orders_core.queries import OrderFilters, count_by_status
from orders_core.staff import SYSTEM

from ..common import WORK_DIR
from ..dataset import sqlite_dataset
from ..views import build_views

STATUSES = ("created", "paid", "fulfilled", "canceled", "returned")


def best(call, n=5):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        call()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def summary_counts(conn, f: OrderFilters):
    where, args = [], []
    if f.created_from:
        where.append("day >= ?")
        args.append(f.created_from.isoformat())
    if f.created_to:
        where.append("day <= ?")
        args.append(f.created_to.isoformat())
    sql = (
        "SELECT status, sum(n) FROM order_day_counts"
        + (" WHERE " + " AND ".join(where) if where else "")
        + " GROUP BY status"
    )
    return dict(conn.execute(sql, args).fetchall())


def trigger_cost(rows: int = 100_000) -> tuple[float, float]:
    out = []
    for with_trigger in (False, True):
        c = sqlite3.connect(":memory:")
        c.execute(
            "CREATE TABLE o (id INTEGER PRIMARY KEY, status TEXT, created_at TEXT, "
            "currency TEXT, total INTEGER)"
        )
        c.execute("CREATE INDEX o_s ON o (status, created_at, total)")
        c.executemany(
            "INSERT INTO o VALUES (?, 'paid', ?, 'usd', 100)",
            ((i, f"2026-{1 + i % 12:02d}-{1 + i % 28:02d} 10:00:00") for i in range(rows)),
        )
        c.execute(
            "CREATE TABLE s (day TEXT, status TEXT, currency TEXT, n INTEGER, "
            "PRIMARY KEY (day, status, currency))"
        )
        c.execute(
            "INSERT INTO s SELECT substr(created_at, 1, 10), status, currency, count(*) "
            "FROM o GROUP BY 1, 2, 3"
        )
        if with_trigger:
            c.execute("""CREATE TRIGGER o_move AFTER UPDATE OF status ON o
                         WHEN old.status <> new.status BEGIN
                           UPDATE s SET n = n - 1 WHERE day = substr(old.created_at, 1, 10)
                             AND status = old.status AND currency = old.currency;
                           INSERT INTO s VALUES (substr(new.created_at, 1, 10), new.status,
                             new.currency, 1)
                             ON CONFLICT (day, status, currency) DO UPDATE SET n = n + 1;
                         END""")
        t = time.perf_counter()
        for start in range(0, rows, 500):
            c.execute("UPDATE o SET status = 'fulfilled' WHERE id >= ? AND id < ?", (start, start + 500))
        c.commit()
        out.append(rows / (time.perf_counter() - t))
    return out[0], out[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=1_000_000)
    args = parser.parse_args()
    data = sqlite_dataset(args.orders, 1, work_dir=WORK_DIR)
    db = data.open()
    path = Path(db.engine.url.database)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA cache_size=-65536")
    t = time.perf_counter()
    conn.execute(
        "CREATE TEMP TABLE order_day_counts AS SELECT substr(created_at, 1, 10) AS day, "
        "status, currency, count(*) AS n FROM orders GROUP BY 1, 2, 3"
    )
    conn.execute("CREATE INDEX temp.odc_day ON order_day_counts (day)")
    build = time.perf_counter() - t
    size = conn.execute("SELECT count(*) FROM order_day_counts").fetchone()[0]
    print(f"summary: {size:,} rows, built in {build:.1f} s")
    for view in build_views(db):
        f = view.filters
        if f.search or f.sku or f.min_total is not None or f.max_total is not None:
            continue
        now = best(lambda f=f: count_by_status(db, f, actor=SYSTEM))
        fast = best(lambda f=f: summary_counts(conn, f))
        expect = {k: v for k, v in count_by_status(db, f, actor=SYSTEM).items() if k != "all" and v}
        assert summary_counts(conn, f) == expect, view.name
        print(f"{view.name:40s} count_by_status {now:8.1f} ms   summary {fast:6.2f} ms")
    plain, kept = trigger_cost()
    print(
        f"set-based status move of 100,000 orders in 500s: {plain:,.0f}/s without, "
        f"{kept:,.0f}/s with the trigger keeping the summary"
    )


if __name__ == "__main__":
    main()
