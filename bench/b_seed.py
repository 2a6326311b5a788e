"""#6 Seeding N orders through orders_core.demo.seed (target at 1M: ≤ 90 s on SQLite).

Baseline, same run: the write floor of this machine, i.e. N rows with the orders
table's 25 columns written by plain batched inserts (executemany on SQLite, COPY on
PostgreSQL) into a bare table with no index, in 50,000-row transactions, the way the
seed writes. The seed writes that plus items, events, payments, refunds, the
gateway's ledger, and all their indexes, so its ratio to the floor (<1) says how
much more it does per order than the least a database write could."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from . import dataset as ds
from .common import Figure, Stats, log, timer

TARGET_SECONDS_1M = 90.0
_ROW = (
    None,
    "ORD-0000000001",
    17,
    "someone.1@example.com",
    "Someone Else",
    "fulfilled",
    "usd",
    2900,
    0,
    1,
    None,
    None,
    dt.datetime(2026, 1, 1, 12),
    dt.datetime(2026, 1, 2),
    dt.datetime(2026, 1, 1, 12, 5),
    dt.datetime(2026, 1, 2),
    None,
    None,
    "Someone Else",
    "1 Main Street",
    "",
    "Portland",
    "OR",
    "97205",
    "US",
)
_BATCH = 50_000


def floor_seconds(url: str, orders: int) -> float:
    """Write `orders` bare rows the cheapest plain way; the wall time."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            raw = conn.connection.driver_connection
            columns = ", ".join(f"c{i}" for i in range(1, len(_ROW)))
            if engine.dialect.name == "sqlite":
                raw.isolation_level = None
                raw.execute("PRAGMA journal_mode=WAL")
                raw.execute("PRAGMA synchronous=NORMAL")
                raw.execute("DROP TABLE IF EXISTS bench_floor")
                raw.execute(
                    f"CREATE TABLE bench_floor (id INTEGER PRIMARY KEY, "
                    f"{', '.join(f'c{i}' for i in range(1, len(_ROW)))})"
                )
                sql = f"INSERT INTO bench_floor VALUES ({', '.join('?' * len(_ROW))})"
                with timer() as elapsed:
                    done = 0
                    while done < orders:
                        n = min(_BATCH, orders - done)
                        raw.execute("BEGIN")
                        raw.executemany(sql, [_ROW] * n)
                        raw.execute("COMMIT")
                        done += n
                raw.execute("DROP TABLE bench_floor")
            else:
                with raw.cursor() as cur:
                    cur.execute("DROP TABLE IF EXISTS bench_floor")
                    cur.execute(
                        "CREATE TABLE bench_floor (id bigserial PRIMARY KEY, "
                        "c1 text, c2 int, c3 text, c4 text, c5 text, c6 text, c7 bigint,"
                        " c8 bigint, c9 int, c10 text, c11 text, c12 timestamp,"
                        " c13 timestamp, c14 timestamp, c15 timestamp, c16 timestamp,"
                        " c17 timestamp, c18 text, c19 text, c20 text, c21 text,"
                        " c22 text, c23 text, c24 text)"
                    )
                    raw.commit()
                    row = _ROW[1:]
                    with timer() as elapsed:
                        done = 0
                        while done < orders:
                            n = min(_BATCH, orders - done)
                            with cur.copy(f"COPY bench_floor ({columns}) FROM STDIN") as copy:
                                for _ in range(n):
                                    copy.write_row(row)
                            raw.commit()
                            done += n
                    cur.execute("DROP TABLE bench_floor")
                    raw.commit()
            return elapsed()
    finally:
        engine.dispose()


def run(dataset: ds.Dataset, *, repeat: int, orders: int) -> Figure:
    samples: list[float] = []
    if dataset.seed_seconds is not None:
        samples.append(dataset.seed_seconds)
    while len(samples) < repeat:
        url = ds.fresh_url(dataset, "seed")
        log(f"seed: seeding {orders:,} orders into a fresh database")
        try:
            samples.append(ds.timed_seed(url, orders, dataset.random_seed))
        finally:
            ds.drop_scratch(url)
        log(f"seed: {samples[-1]:.1f} s")
    floors = []
    for _ in range(len(samples)):
        url = ds.fresh_url(dataset, "floor")
        try:
            floors.append(floor_seconds(url, orders))
        finally:
            ds.drop_scratch(url)
        log(f"seed: write floor {floors[-1]:.1f} s")
    value = Stats.of(samples, "s")
    target = TARGET_SECONDS_1M * orders / 1_000_000
    figure = Figure(
        key=f"seed.{dataset.backend}",
        title=f"Seed {orders:,} orders (demo.seed)",
        backend=dataset.backend,
        value=value,
        better="lower",
        baseline=Stats.of(floors, "s"),
        baseline_title="bare 25-column rows, batched, no index",
        target=(f"≤ {target:g} s" if dataset.backend == "sqlite" else ""),
        met=(value.median <= target) if dataset.backend == "sqlite" and orders >= 1_000_000 else None,
        extra={"orders": orders},
    )
    return figure
