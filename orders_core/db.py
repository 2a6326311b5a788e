"""Engines, transactions and migrations.

SQLite is the embedded default: WAL so readers never wait for the writer, foreign
keys on, a busy timeout, and every write transaction opened with BEGIN IMMEDIATE so
two writers queue for the lock instead of failing half-way with "database is locked".
PostgreSQL is selected by ORDERS_DATABASE_URL.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.engine import make_url

from .config import PROJECT_ROOT, load_settings

SQLITE_BUSY_TIMEOUT_MS = 30_000


class Database:
    """One engine, and the two kinds of transaction every service uses."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        self.is_postgres = engine.dialect.name == "postgresql"
        self._immediate = engine.execution_options(sqlite_begin="IMMEDIATE") if self.is_sqlite else engine
        self._held = threading.local()

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that commits when the block ends and rolls back on error."""
        held = self._idle_held_connection()
        if held is None:
            with self._immediate.begin() as conn:
                yield conn
            return
        if self.is_sqlite:
            held.execution_options(sqlite_begin="IMMEDIATE")
        self._held.busy = True
        try:
            with held.begin():
                yield held
        finally:
            self._held.busy = False
            if self.is_sqlite:
                held.execution_options(sqlite_begin="DEFERRED")

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        held = self._idle_held_connection()
        if held is None:
            with self.engine.connect() as conn:
                yield conn
                self._end_read(conn)
            return
        self._held.busy = True
        try:
            if self.is_postgres:
                # Each SELECT its own snapshot, as under READ COMMITTED inside a transaction
                # too, without the BEGIN and COMMIT round trips (so: no stream_results here).
                held.execution_options(isolation_level="AUTOCOMMIT")
            yield held
            self._end_read(held)
        finally:
            self._held.busy = False
            if held.in_transaction():
                held.rollback()  # as closing a connection would: the read's snapshot ends here
            if self.is_postgres:
                held.execution_options(isolation_level=held.default_isolation_level)

    def _end_read(self, conn: Connection) -> None:
        """A read that ended well ends with COMMIT on PostgreSQL, not ROLLBACK: the same
        for a read, but psycopg answers a ROLLBACK by dropping its prepared statements
        (one more round trip, DEALLOCATE ALL, and every statement parsed afresh)."""
        if self.is_postgres and conn.in_transaction():
            conn.commit()

    @contextlib.contextmanager
    def statement(self) -> Iterator[Connection]:
        """For one statement that commits by itself (it is atomic alone): on PostgreSQL
        in autocommit, so no BEGIN and no COMMIT round trip; on SQLite a write() block.
        Only for a single statement: two statements here would be two transactions."""
        if not self.is_postgres:
            with self.write() as conn:
                yield conn
            return
        held = self._idle_held_connection()
        if held is None:
            with self.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT")
                yield conn
            return
        self._held.busy = True
        try:
            held.execution_options(isolation_level="AUTOCOMMIT")
            yield held
            if held.in_transaction():
                held.commit()  # SQLAlchemy's own bookkeeping: nothing is sent in autocommit
        finally:
            self._held.busy = False
            if held.in_transaction():
                held.rollback()
            held.execution_options(isolation_level=held.default_isolation_level)

    @contextlib.contextmanager
    def one_connection(self) -> Iterator[None]:
        """Inside the block, this thread's write() and read() blocks take turns on one
        pooled connection (one checkout) instead of one each; each write() block is
        still its own transaction, and on PostgreSQL each read() block's statements run
        in autocommit (no BEGIN and COMMIT round trips; under READ COMMITTED a read
        transaction gave each statement its own snapshot anyway). A block opened while
        another is in progress gets a connection of its own, as outside."""
        if getattr(self._held, "conn", None) is not None:
            yield
            return
        with self.engine.connect() as conn:
            self._held.conn, self._held.busy = conn, False
            try:
                yield
            finally:
                self._held.conn = None

    def _idle_held_connection(self) -> Connection | None:
        conn = getattr(self._held, "conn", None)
        if conn is None or self._held.busy or conn.in_transaction() or conn.closed:
            return None
        return conn

    def dispose(self) -> None:
        self.engine.dispose()

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=False)

    @property
    def sqlite_file(self) -> str | None:
        """The SQLite database's file, for another process to open (the ADBC helper);
        None when not SQLite, in memory, or named by a file: URI."""
        name = self.engine.url.database if self.is_sqlite else None
        if not name or name == ":memory:" or name.startswith("file:"):
            return None
        return os.path.abspath(name)


def sqlite_statement(db: Database, query) -> tuple[str, list]:
    """A select as SQLite SQL and its positional parameters, for a driver outside
    SQLAlchemy (ADBC)."""
    compiled = query.compile(dialect=db.engine.dialect, compile_kwargs={"render_postcompile": True})
    values = compiled.construct_params()
    return str(compiled), [sqlite_parameter(values[name]) for name in (compiled.positiontup or ())]


def sqlite_parameter(value):
    """A parameter as SQLAlchemy's SQLite types store it (for SQL run outside SQLAlchemy,
    e.g. through ADBC): its DATETIME text format, ISO dates, booleans as 0/1."""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    return value


def create_database_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        )
        _configure_sqlite(engine)
        return engine
    engine = create_engine(url, pool_size=10, max_overflow=10)
    _ping_when_idle(engine)
    return engine


# A connection back in the pool for longer than this is pinged before it is handed out
# (a server restart or an idle timeout may have closed it); one used just now is not:
# pool_pre_ping's ping of every checkout was one round trip in each transaction.
PING_IDLE_SECONDS = 5.0


def _ping_when_idle(engine: Engine) -> None:
    @event.listens_for(engine.pool, "checkin")
    def _on_checkin(_dbapi_connection, record):
        if record is not None:
            record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def _on_checkout(dbapi_connection, record, _proxy):
        idle_since = record.info.get("checked_in_at")
        if idle_since is None or time.monotonic() - idle_since < PING_IDLE_SECONDS:
            return  # brand new, or used a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:
            # The pool opens a fresh connection and hands that out instead.
            raise exc.DisconnectionError(
                f"connection found closed when taken from the pool: {error}"
            ) from error


SQLITE_JOURNAL_SIZE_LIMIT = 16 * 1024 * 1024


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.execute("PRAGMA temp_store=MEMORY")
        # After a checkpoint resets the WAL, cut its file back to this size (bytes)
        # instead of keeping its high-water mark (a long job's WAL stayed at 175+ MB).
        cursor.execute(f"PRAGMA journal_size_limit={SQLITE_JOURNAL_SIZE_LIMIT}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def _alembic_config():
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    from sqlalchemy import inspect, text

    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent, safe at every start)."""
    from alembic import command

    if current_revision(engine) == head_revision():
        return  # the common case at start-up: nothing to do, and no migration machinery run
    config = _alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


_databases: dict[str, Database] = {}
_lock = threading.Lock()


def open_database(url: str | None = None, *, run_migrations: bool = True) -> Database:
    """The process-wide Database for `url` (default: from the environment)."""
    url = url or load_settings().database_url
    with _lock:
        db = _databases.get(url)
        if db is None:
            engine = create_database_engine(url)
            if run_migrations:
                migrate(engine)
            db = Database(engine)
            _databases[url] = db
        return db


def forget_databases() -> None:
    """Dispose every cached engine (tests, and after a fork)."""
    with _lock:
        for db in _databases.values():
            db.dispose()
        _databases.clear()
