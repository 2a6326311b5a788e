"""Experiment (not part of the harness): what an FTS5 trigram index on the orders'
customer email and name would gain the orders page's searches on SQLite, and what
building it costs.

    python -m bench.experiments.search_fts [--orders N]

Reads the cached benchmark database; the index is a contentless FTS5 table in TEMP
(nothing is written to the database). Each search is the same LIKE as today behind
the index (`id IN (trigram match) AND (email LIKE .. OR name LIKE ..)`), so the answers
do not change: the trigram match, case-folded, finds a superset and the LIKE decides."""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import time
from pathlib import Path

from ..common import WORK_DIR
from ..dataset import sqlite_dataset

TERMS = ("smith", "dubois", "chen3@example", "example.org", "zzqxj")


def timed(conn, sql, args, n=3):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        rows = conn.execute(sql, args).fetchall()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=1_000_000)
    args = parser.parse_args()
    data = sqlite_dataset(args.orders, 1, work_dir=WORK_DIR)
    path = Path(data.open().engine.url.database)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA cache_size=-65536")
    conn.execute("PRAGMA temp_store=MEMORY")
    t = time.perf_counter()
    conn.execute(
        "CREATE VIRTUAL TABLE temp.order_search USING fts5(customer_email, "
        "customer_name, content='', tokenize='trigram')"
    )
    conn.execute(
        "INSERT INTO temp.order_search (rowid, customer_email, customer_name) "
        "SELECT id, customer_email, customer_name FROM orders"
    )
    print(f"trigram index over {args.orders:,} orders built in {time.perf_counter() - t:.1f} s")
    like = "(lower(customer_email) LIKE ? ESCAPE '\\' OR lower(customer_name) LIKE ? ESCAPE '\\')"
    for term in TERMS:
        pattern = f"%{term}%"
        scan, expect = timed(
            conn, f"SELECT status, count(*) FROM orders WHERE {like} GROUP BY status", (pattern, pattern), n=1
        )
        fts, got = timed(
            conn,
            f"SELECT status, count(*) FROM orders WHERE id IN (SELECT rowid "
            f"FROM temp.order_search WHERE order_search MATCH ?) AND {like} "
            f"GROUP BY status",
            (f'"{term}"', pattern, pattern),
        )
        page, _ = timed(
            conn,
            f"SELECT id FROM orders WHERE id IN (SELECT rowid FROM "
            f"temp.order_search WHERE order_search MATCH ?) AND {like} "
            f"ORDER BY created_at DESC, id DESC LIMIT 50",
            (f'"{term}"', pattern, pattern),
        )
        assert sorted(got) == sorted(expect), term
        print(
            f"{term!r:16} {sum(n for _, n in got):>8,} orders: counts by scan {scan:8.1f} ms, "
            f"through the index {fts:7.1f} ms; a page {page:7.1f} ms"
        )


if __name__ == "__main__":
    main()
