"""The benchmark databases: N orders built through the project's own seed path
(orders_core.demo.seed), cached between runs, and scratch copies for the
measurements that change data.

SQLite: the cache is bench/work/orders-<N>-s<seed>.db with a JSON sidecar of how it
was built (orders, random seed, migration head). It is reused while those match and
rebuilt otherwise (or with --rebuild). Destructive measurements run on a file copy.

PostgreSQL (when ORDERS_DATABASE_URL names one): the cache is the database
"<that database>_bench_<N>_s<seed>" on the same server, with the same facts in a
bench_meta table; the scratch copy is CREATE DATABASE ... TEMPLATE of it."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sqlite3
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from orders_core import db as orders_db
from orders_core import demo

from .common import WORK_DIR, log, timer


@dataclasses.dataclass
class Dataset:
    backend: str  # sqlite or postgresql
    url: str  # the cached, read-only-by-convention database
    orders: int
    random_seed: int
    seed_seconds: float | None  # when this run built it: the seed's wall time
    built_now: bool

    def open(self) -> orders_db.Database:
        return orders_db.open_database(self.url)


def head_revision() -> str:
    return orders_db.head_revision()


def _meta(orders: int, random_seed: int) -> dict:
    return {"orders": orders, "random_seed": random_seed, "revision": head_revision(), "format": 1}


def forget(url: str) -> None:
    """Close the process-wide engine of `url` (before copying or dropping it)."""
    with orders_db._lock:
        database = orders_db._databases.pop(url, None)
    if database is not None:
        database.dispose()


def timed_seed(url: str, orders: int, random_seed: int) -> float:
    """Migrate a fresh database at `url` and seed it; the seed's wall time (s)."""
    database = orders_db.open_database(url)
    with timer() as elapsed:
        report = demo.seed(database, orders=orders, random_seed=random_seed)
    log(f"  {report.summary()}")
    return elapsed()


# -- SQLite -----------------------------------------------------------------------------------
def sqlite_files(path: Path) -> list[Path]:
    return [path, Path(f"{path}-wal"), Path(f"{path}-shm")]


def remove_sqlite(path: Path) -> None:
    for p in sqlite_files(path):
        p.unlink(missing_ok=True)


def checkpoint_sqlite(path: Path) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def sqlite_dataset(
    orders: int, random_seed: int, *, work_dir: Path = WORK_DIR, rebuild: bool = False
) -> Dataset:
    work_dir.mkdir(parents=True, exist_ok=True)
    path = work_dir / f"orders-{orders}-s{random_seed}.db"
    sidecar = path.with_suffix(".json")
    want = _meta(orders, random_seed)
    url = f"sqlite:///{path}"
    if not rebuild and path.exists() and sidecar.exists():
        try:
            have = json.loads(sidecar.read_text())
        except ValueError:
            have = {}
        if {k: have.get(k) for k in want} == want:
            log(f"SQLite: reusing {path.name} ({orders:,} orders, migration {want['revision']})")
            return Dataset("sqlite", url, orders, random_seed, None, False)
    log(f"SQLite: seeding {orders:,} orders into {path.name} (no matching cache)")
    forget(url)
    sidecar.unlink(missing_ok=True)
    remove_sqlite(path)
    seconds = timed_seed(url, orders, random_seed)
    forget(url)
    checkpoint_sqlite(path)
    sidecar.write_text(json.dumps(dict(want, seed_seconds=round(seconds, 3)), indent=2))
    log(f"SQLite: seeded in {seconds:.1f} s")
    return Dataset("sqlite", url, orders, random_seed, seconds, True)


def sqlite_scratch(dataset: Dataset, name: str) -> str:
    """A copy of the cached SQLite database, beside it (in the run's --work-dir), to change
    freely; its URL."""
    source = Path(make_url(dataset.url).database)
    target = source.parent / f"scratch-{name}.db"
    forget(dataset.url)
    checkpoint_sqlite(source)
    remove_sqlite(target)
    with timer() as elapsed:
        shutil.copyfile(source, target)
    log(f"  copied the database for {name} in {elapsed():.1f} s")
    return f"sqlite:///{target}"


def drop_scratch(url: str) -> None:
    forget(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        remove_sqlite(Path(parsed.database))
    else:
        _pg_drop(url)


# -- PostgreSQL -------------------------------------------------------------------------------
def postgres_url() -> str | None:
    url = os.environ.get("ORDERS_DATABASE_URL", "").strip()
    if url and make_url(url).get_backend_name() == "postgresql":
        return url
    return None


def _pg_admin(url: str):
    return create_engine(
        make_url(url).set(database="postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT"
    )


def _pg_exists(url: str) -> bool:
    name = make_url(url).database
    engine = _pg_admin(url)
    try:
        with engine.connect() as conn:
            return (
                conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
                is not None
            )
    finally:
        engine.dispose()


def _pg_create(url: str, template: str | None = None) -> None:
    name = make_url(url).database
    engine = _pg_admin(url)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.exec_driver_sql(
                f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
            )
    finally:
        engine.dispose()


def _pg_drop(url: str) -> None:
    name = make_url(url).database
    engine = _pg_admin(url)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        engine.dispose()


def postgres_dataset(base_url: str, orders: int, random_seed: int, *, rebuild: bool = False) -> Dataset:
    base = make_url(base_url)
    url = base.set(database=f"{base.database}_bench_{orders}_s{random_seed}").render_as_string(
        hide_password=False
    )
    want = _meta(orders, random_seed)
    if not rebuild and _pg_exists(url):
        engine = create_engine(url, poolclass=NullPool)
        try:
            with engine.connect() as conn:
                row = (
                    conn.execute(text("SELECT value FROM bench_meta WHERE key = 'meta'")).scalar_one_or_none()
                    if conn.dialect.has_table(conn, "bench_meta")
                    else None
                )
        finally:
            engine.dispose()
        have = json.loads(row) if row else {}
        if {k: have.get(k) for k in want} == want:
            log(f"PostgreSQL: reusing {make_url(url).database}")
            return Dataset("postgresql", url, orders, random_seed, None, False)
    log(f"PostgreSQL: seeding {orders:,} orders into {make_url(url).database}")
    forget(url)
    _pg_create(url)
    seconds = timed_seed(url, orders, random_seed)
    forget(url)
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE bench_meta (key text PRIMARY KEY, value text)")
            conn.execute(
                text("INSERT INTO bench_meta VALUES ('meta', :v)"),
                {"v": json.dumps(dict(want, seed_seconds=round(seconds, 3)))},
            )
    finally:
        engine.dispose()
    log(f"PostgreSQL: seeded in {seconds:.1f} s")
    return Dataset("postgresql", url, orders, random_seed, seconds, True)


def postgres_scratch(dataset: Dataset, name: str) -> str:
    base = make_url(dataset.url)
    url = base.set(database=f"{base.database}_{name}").render_as_string(hide_password=False)
    forget(dataset.url)
    forget(url)
    with timer() as elapsed:
        _pg_create(url, template=base.database)
    log(f"  copied the database for {name} in {elapsed():.1f} s")
    return url


def scratch(dataset: Dataset, name: str) -> str:
    if dataset.backend == "sqlite":
        return sqlite_scratch(dataset, name)
    return postgres_scratch(dataset, name)


def fresh_url(dataset: Dataset, name: str) -> str:
    """An empty database (nothing migrated yet) beside the dataset's."""
    if dataset.backend == "sqlite":
        path = Path(make_url(dataset.url).database).parent / f"fresh-{name}.db"
        forget(f"sqlite:///{path}")
        remove_sqlite(path)
        return f"sqlite:///{path}"
    base = make_url(dataset.url)
    url = base.set(database=f"{base.database}_{name}").render_as_string(hide_password=False)
    forget(url)
    _pg_create(url)
    return url
