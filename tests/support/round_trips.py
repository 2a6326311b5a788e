"""Counting what one operation sends to the database through SQLAlchemy's event
hooks (counts, not time), so a test can pin them and the bench can report them:
statements, transactions and connections taken from the pool."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

from sqlalchemy import Engine, event


@dataclasses.dataclass
class RoundTrips:
    statements: int = 0  # each execute or executemany through a SQLAlchemy Connection
    transactions: int = 0  # each ended by a COMMIT or a ROLLBACK
    checkouts: int = 0  # connections taken from the pool, raw ones (the simulated gateway's) included
    pings_per_checkout: int = 0  # 1 where the pool pings a connection before handing it out
    sql: list[str] = dataclasses.field(default_factory=list)

    @property
    def total(self) -> int:
        """Round trips to the server from SQLAlchemy Connections: every statement, the
        BEGIN and the end of each transaction, a ping per checkout where the pool pings.
        (The simulated gateway's own statements run on raw DBAPI cursors, outside.)"""
        return self.statements + 2 * self.transactions + self.pings_per_checkout * self.checkouts


@contextlib.contextmanager
def counting(engine: Engine) -> Iterator[RoundTrips]:
    counts = RoundTrips(pings_per_checkout=1 if engine.pool._pre_ping else 0)

    def on_execute(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("BEGIN"):
            return  # SQLite's explicit BEGIN (db.py): counted with its transaction
        counts.statements += 1
        counts.sql.append(" ".join(statement.split())[:100])

    def on_end(conn):
        counts.transactions += 1

    def on_checkout(dbapi_connection, record, proxy):
        counts.checkouts += 1

    hooks = [
        (engine, "before_cursor_execute", on_execute),
        (engine, "commit", on_end),
        (engine, "rollback", on_end),
        (engine.pool, "checkout", on_checkout),
    ]
    for target, name, fn in hooks:
        event.listen(target, name, fn)
    try:
        yield counts
    finally:
        for target, name, fn in hooks:
            event.remove(target, name, fn)
