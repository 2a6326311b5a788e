"""Counting what one operation sends to the database through SQLAlchemy's event
hooks (counts, not time), so a test can pin them and the bench can report them:
statements, transactions and connections taken from the pool. On PostgreSQL also the
round trips themselves, read off the wire: libpq's trace of every connection taken
from the pool (the simulated gateway's raw ones included) while counting, one
ReadyForQuery from the server ending each round trip."""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
from collections.abc import Iterator

from sqlalchemy import Engine, event


@dataclasses.dataclass
class RoundTrips:
    statements: int = 0  # each execute or executemany through a SQLAlchemy Connection
    transactions: int = 0  # each ended by a COMMIT or a ROLLBACK
    checkouts: int = 0  # connections taken from the pool, raw ones (the simulated gateway's) included
    pings_per_checkout: int = 0  # 1 where the pool pings a connection before handing it out
    sql: list[str] = dataclasses.field(default_factory=list)
    wire: int | None = None  # PostgreSQL: round trips seen on the wire, every connection's
    wire_sql: list[str] = dataclasses.field(default_factory=list)  # what went out, in order

    @property
    def total(self) -> int:
        """Round trips to the server: on PostgreSQL those on the wire (the simulated
        gateway's included); on SQLite (in-process: a "round trip" is a call into the
        library) every statement through a SQLAlchemy Connection, the BEGIN and the end
        of each transaction, a ping per checkout where the pool pings."""
        if self.wire is not None:
            return self.wire
        return self.statements + 2 * self.transactions + self.pings_per_checkout * self.checkouts


@contextlib.contextmanager
def counting(engine: Engine) -> Iterator[RoundTrips]:
    counts = RoundTrips(pings_per_checkout=1 if engine.pool._pre_ping else 0)
    traced = engine.dialect.name == "postgresql"
    trace = tempfile.TemporaryFile("w+") if traced else None  # noqa: SIM115 - closed below, after the hooks

    def on_execute(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("BEGIN"):
            return  # SQLite's explicit BEGIN (db.py): counted with its transaction
        counts.statements += 1
        counts.sql.append(" ".join(statement.split())[:100])

    def on_end(conn):
        counts.transactions += 1

    def on_checkout(dbapi_connection, record, proxy):
        counts.checkouts += 1
        if trace is not None:
            trace.flush()
            dbapi_connection.pgconn.trace(trace.fileno())

    def on_checkin(dbapi_connection, record):
        if trace is not None and dbapi_connection is not None:
            dbapi_connection.pgconn.untrace()

    hooks = [
        (engine, "before_cursor_execute", on_execute),
        (engine, "commit", on_end),
        (engine, "rollback", on_end),
        (engine.pool, "checkout", on_checkout),
        (engine.pool, "checkin", on_checkin),
    ]
    for target, name, fn in hooks:
        event.listen(target, name, fn)
    try:
        yield counts
    finally:
        for target, name, fn in hooks:
            event.remove(target, name, fn)
        if trace is not None:
            trace.flush()
            trace.seek(0)
            counts.wire = 0
            for line in trace:
                fields = line.rstrip("\n").split("\t")
                if len(fields) < 4:
                    continue
                if fields[1] == "B" and fields[3] == "ReadyForQuery":
                    counts.wire += 1
                elif fields[1] == "F" and fields[3] in ("Query", "Parse"):
                    counts.wire_sql.append(" ".join(" ".join(fields[4:]).split())[:100])
            trace.close()
