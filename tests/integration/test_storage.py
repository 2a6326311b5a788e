"""The storage layer and the test fixtures themselves, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from orders_core.db import Database, migrate
from tests.support import postgres as pg

CORE_TABLES = {
    "orders",
    "order_items",
    "order_events",
    "payments",
    "refunds",
    "jobs",
    "job_items",
    "customers",
    "skus",
    "products",
}


def _table_names(db: Database) -> set[str]:
    return set(inspect(db.engine).get_table_names())


def _alembic_versions(db: Database) -> list[str]:
    with db.read() as conn:
        return [row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))]


def test_migrations_create_the_order_tables(db: Database):
    assert _table_names(db) >= CORE_TABLES
    assert len(_alembic_versions(db)) == 1


def test_each_test_starts_with_an_empty_database(db: Database):
    with db.read() as conn:
        for table in ("orders", "order_events", "jobs", "customers"):
            assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 0


def test_running_migrations_twice_is_a_no_op(db: Database):
    tables_before, versions_before = _table_names(db), _alembic_versions(db)
    migrate(db.engine)
    migrate(db.engine)
    assert _table_names(db) == tables_before
    assert _alembic_versions(db) == versions_before


def test_foreign_keys_are_enforced(db: Database):
    with pytest.raises(IntegrityError), db.write() as conn:
        conn.execute(
            text(
                "INSERT INTO order_events (order_id, at, actor, action, note) "
                "VALUES (:order_id, :at, 'test', 'created', '')"
            ),
            {"order_id": 999_999, "at": dt.datetime(2026, 1, 1)},
        )


def test_a_failed_write_transaction_rolls_back(db: Database):
    with db.write() as conn:
        conn.execute(text("CREATE TABLE scratch (id INTEGER PRIMARY KEY, note TEXT)"))
    with pytest.raises(RuntimeError), db.write() as conn:
        conn.execute(text("INSERT INTO scratch (id, note) VALUES (1, 'lost')"))
        raise RuntimeError("boom")
    with db.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM scratch")).scalar_one() == 0


def test_sqlite_runs_in_wal_mode_with_foreign_keys_on(sqlite_db: Database):
    with sqlite_db.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() >= 5_000


def test_sqlite_write_transaction_holds_the_write_lock_from_its_first_statement(sqlite_db: Database):
    path = make_url(sqlite_db.url).database
    with sqlite_db.write() as conn:
        conn.execute(text("SELECT 1"))  # only a read: a DEFERRED transaction takes no lock
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        finally:
            other.close()


def test_sqlite_concurrent_writers_queue_instead_of_failing(sqlite_db: Database):
    with sqlite_db.write() as conn:
        conn.execute(text("CREATE TABLE scratch (id INTEGER PRIMARY KEY, seen INTEGER)"))

    first_inside = threading.Event()
    errors: list[BaseException] = []

    def writer(row_id: int, hold: float) -> None:
        try:
            with sqlite_db.write() as conn:
                first_inside.set()
                # Read first, then write: with a deferred BEGIN this is the pattern
                # that fails with "database is locked" when two writers overlap.
                seen = conn.execute(text("SELECT count(*) FROM scratch")).scalar_one()
                time.sleep(hold)
                conn.execute(
                    text("INSERT INTO scratch (id, seen) VALUES (:id, :seen)"), {"id": row_id, "seen": seen}
                )
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    first = threading.Thread(target=writer, args=(1, 0.3))
    first.start()
    assert first_inside.wait(5)
    second = threading.Thread(target=writer, args=(2, 0.0))
    second.start()
    first.join(10)
    second.join(10)

    assert errors == []
    with sqlite_db.read() as conn:
        rows = conn.execute(text("SELECT id, seen FROM scratch ORDER BY id")).all()
    # The second writer waited for the first to commit, so it saw its row.
    assert [tuple(r) for r in rows] == [(1, 0), (2, 1)]


@pytest.mark.postgres
def test_postgres_database_is_postgresql_15_on_loopback(postgres_db: Database):
    assert postgres_db.is_postgres
    with postgres_db.read() as conn:
        version = int(conn.exec_driver_sql("SHOW server_version_num").scalar_one())
        server_addr = conn.exec_driver_sql("SELECT host(inet_server_addr())").scalar_one()
    assert 150000 <= version < 160000
    if pg.external_url() is None:
        assert make_url(postgres_db.url).host == "127.0.0.1"
        assert server_addr == "127.0.0.1"


@pytest.mark.postgres
def test_postgres_each_test_gets_its_own_database(postgres_db: Database, postgres_server: str):
    own = make_url(postgres_db.url).database
    assert own.startswith("test_")
    assert own != make_url(postgres_server).database
