"""Seeded demo orders: generating their rows and loading them fast.

`append_orders` appends N orders in every status, with their items, timeline events,
payments, refunds and the simulated gateway's matching ledger rows, exactly as the
real services would have left them, so those services can act on seeded orders
later (refund a seeded paid order through the simulated gateway, say).

Speed matters (a million orders on SQLite in well under a minute and a half), so the
orders are not made through the services: rows are generated as plain tuples from
precomputed pools (carts, customers' addresses, timestamp strings) and written in
batches of 50,000 orders through the DBAPI connection (`executemany` on SQLite,
`COPY` on PostgreSQL), one transaction per batch, with ids assigned explicitly after
the current maximum of each table. The next batch is generated in a thread while
the last one is written; on SQLite the WAL is checkpointed in the background too.
All indexes stay. A million orders (1.5M items, 2.7M events, 0.9M payments, 0.2M
refunds, 1.4 GB) take SQLite about 35-40 s of CPU on the writing thread, which
bounds the time on an idle two-core machine; PostgreSQL is slower (its foreign
key checks), a few minutes.

What the seeded data looks like, for the code that acts on it later:
- Statuses: about 5% created, 25% paid, 45% fulfilled, 15% canceled (a third of
  those from created, never paid; the rest after payment, fully refunded), 10%
  returned (fully refunded). Recent orders are more often created or paid.
- About 2% of all orders are still created after a declined card: a `payment_failed`
  event and a *failed* payments row (idempotency key "<number>:charge:1") whose
  sim_charges row ended as requires_payment_method, as checkout leaves them; the
  next attempt is therefore charge:2.
- Every paid order has one succeeded payment ("<number>:charge:1") and a succeeded
  sim_charges row; every refunded order has one succeeded refund
  ("<number>:refund:1", reason + "\\nRefunded $x (re_sim_...)" in the event) and a
  sim_refunds row whose reference is that key.

The catalog, customers and staff the orders refer to are demo.py's; this module
reads the SKUs and customers from the database and is handed the staff, and where
a customer with no saved address ships to.
"""

from __future__ import annotations

import calendar
import collections
import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import functools
import itertools
import random
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager as ContextManager

from sqlalchemy import Connection, select

from .chunking import chunks
from .db import Database
from .idempotency_keys import charge_key, refund_key
from .money import format_money
from .order_numbers import format_order_number
from .payments.card_tokens import DECLINE_MESSAGES
from .schema import addresses, customers, products, skus
from .timeline import charged_note, refunded_note


@dataclasses.dataclass(frozen=True)
class SeedStaff:
    """The staff emails that act on seeded orders (fulfil, cancel, return)."""

    admin: str
    ops: str
    support: str


# Where a customer with no saved address ships to: (customer id, name) -> the ship_*
# columns (name, line1, line2, city, region, postal code, country).
FallbackAddress = Callable[[int, str], tuple[str, ...]]


@dataclasses.dataclass
class SeedReport:
    """What a seed added; elapsed_seconds is filled in by whoever timed it."""

    orders: int
    by_status: dict[str, int]
    first_order_id: int | None
    last_order_id: int | None
    items: int
    events: int
    payments: int
    refunds: int
    elapsed_seconds: float

    def summary(self) -> str:
        statuses = ", ".join(f"{n} {s}" for s, n in self.by_status.items())
        return (
            f"Seeded {self.orders} orders ({statuses}); {self.items} items, {self.events} "
            f"events, {self.payments} payments, {self.refunds} refunds in "
            f"{self.elapsed_seconds:.1f} s."
        )


STATUSES = ("created", "paid", "fulfilled", "canceled", "returned")
# Kinds of seeded order: 0 created, 1 created after a declined card, 2 paid, 3 fulfilled,
# 4 canceled before payment, 5 canceled after payment (refunded), 6 returned (refunded).
# Per mille, for orders younger than _RECENT and for older ones; overall about
# created 5%, paid 25%, fulfilled 45%, canceled 15% (a third before payment), returned 10%.
_RECENT = 14 * 86400
_RECENT_MIX = (80, 40, 450, 250, 60, 80, 40)
_OLDER_MIX = (26, 18, 233, 467, 49, 102, 105)
_CURRENCY_MIX = (("usd", 60), ("eur", 20), ("gbp", 12), ("jpy", 8))
_CARD_BRANDS = ("visa",) * 6 + ("mastercard",) * 3 + ("amex",)
_DECLINES = ("insufficient_funds", "insufficient_funds", "generic_decline", "expired_card")
_CANCEL_REASONS = (
    "Customer request",
    "Customer request",
    "Duplicate order",
    "Ordered by mistake",
    "Out of stock",
    "Suspected fraud",
)
_RETURN_REASONS = (
    "Customer request",
    "Damaged in transit",
    "Wrong item received",
    "Not as described",
    "No longer needed",
)
_SPAN = 180 * 86400
_CART_POOL = 1024
_BATCH = 50_000

_ORDER_COLUMNS = (
    "id",
    "number",
    "customer_id",
    "customer_email",
    "customer_name",
    "status",
    "currency",
    "total_amount",
    "refunded_amount",
    "item_count",
    "created_at",
    "updated_at",
    "paid_at",
    "fulfilled_at",
    "canceled_at",
    "returned_at",
    "ship_name",
    "ship_line1",
    "ship_line2",
    "ship_city",
    "ship_region",
    "ship_postal_code",
    "ship_country",
)
_ITEM_COLUMNS = (
    "id",
    "order_id",
    "sku_id",
    "sku_code",
    "name",
    "product_name",
    "quantity",
    "unit_amount",
    "amount",
)
_EVENT_COLUMNS = ("id", "order_id", "at", "actor", "action", "from_status", "to_status", "note")
_PAYMENT_COLUMNS = (
    "id",
    "order_id",
    "gateway",
    "gateway_payment_id",
    "amount",
    "currency",
    "status",
    "idempotency_key",
    "failure_code",
    "failure_message",
    "created_at",
    "updated_at",
)
_CHARGE_COLUMNS = (
    "id",
    "amount",
    "currency",
    "status",
    "card_brand",
    "decline_code",
    "reference",
    "created_at",
)
_REFUND_COLUMNS = (
    "id",
    "order_id",
    "payment_id",
    "gateway",
    "gateway_refund_id",
    "amount",
    "currency",
    "status",
    "idempotency_key",
    "action",
    "actor",
    "reason",
    "created_at",
    "updated_at",
)
_SIM_REFUND_COLUMNS = ("id", "charge_id", "amount", "currency", "reference", "created_at")
# Parents before children (PostgreSQL checks the foreign keys as rows arrive).
_TABLES = (
    ("orders", _ORDER_COLUMNS),
    ("order_items", _ITEM_COLUMNS),
    ("order_events", _EVENT_COLUMNS),
    ("sim_charges", _CHARGE_COLUMNS),
    ("payments", _PAYMENT_COLUMNS),
    ("refunds", _REFUND_COLUMNS),
    ("sim_refunds", _SIM_REFUND_COLUMNS),
)
_ID_TABLES = ("orders", "order_items", "order_events", "payments", "refunds")
# Generate the next batch in a thread while the last one is written (the database
# driver lets go of the GIL while the database works).
_PREFETCH = True
_WAL_RESTART_BATCHES = 4


def append_orders(
    db: Database,
    total: int,
    *,
    random_seed: int,
    now: dt.datetime,
    staff: SeedStaff,
    fallback_address: FallbackAddress,
) -> SeedReport:
    """Append `total` generated orders (naive UTC `now`) for the customers and active
    SKUs already in the database."""
    by_status = dict.fromkeys(STATUSES, 0)
    added = SeedReport(total, by_status, None, None, 0, 0, 0, 0, 0.0)
    if total:
        gen = _Generator(db, total, random_seed, now, staff, fallback_address)

        def make(done: int, n: int, starts: dict[str, int]):
            rows = gen.batch(done, n, starts)
            statuses = collections.Counter(row[5] for row in rows["orders"])
            return starts, rows, None if db.is_postgres else _sqlite_statements(rows), statuses

        with (
            _bulk_transactions(db) as transaction,
            concurrent.futures.ThreadPoolExecutor(1, "demo-seed") as pool,
        ):
            done, ahead = 0, None
            while done < total:
                n = min(_BATCH, total - done)
                with transaction() as conn:
                    starts = _reserve_ids(db, conn, n)
                    made = None
                    if ahead is not None:
                        # Made while the previous batch was written, for the ids that
                        # were expected then; used only if nobody else wrote meanwhile.
                        made = ahead.result()
                        if made[0] != starts:
                            made = None
                    if added.first_order_id is None:
                        added.first_order_id = starts["orders"]
                        gen.start(starts["orders"])
                    _, rows, statements, statuses = made or make(done, n, starts)
                    following = min(_BATCH, total - done - n)
                    if following and _PREFETCH:
                        expected = {t: starts[t] + len(rows[t]) for t in _ID_TABLES}
                        ahead = pool.submit(make, done + n, following, expected)
                    else:
                        ahead = None
                    _insert(db, conn, rows, statements)
                done += n
                added.last_order_id = starts["orders"] + n - 1
                added.items += len(rows["order_items"])
                added.events += len(rows["order_events"])
                added.payments += len(rows["payments"])
                added.refunds += len(rows["refunds"])
                for status, count in statuses.items():
                    by_status[status] += count
                del made, rows, statements
            if ahead is not None:
                ahead.cancel()
    if db.is_postgres and total:
        with db.engine.connect() as conn:  # fresh planner statistics for the big tables
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                "ANALYZE orders, order_items, order_events, payments, refunds, sim_charges, sim_refunds"
            )
            # order_skus' visibility map, so the SKU views' counts are index-only scans at once
            # (a database not migrated to 0013 yet has none)
            if conn.dialect.has_table(conn, "order_skus"):
                conn.exec_driver_sql("VACUUM (ANALYZE) order_skus")
    return added


@contextlib.contextmanager
def _bulk_transactions(db: Database) -> Iterator[Callable[[], ContextManager[Connection]]]:
    """Yields a factory of write transactions for the batches; db.write() except on SQLite.

    On SQLite the batches run on one connection, BEGIN IMMEDIATE like db.write(), but
    with foreign key checks off (the rows are consistent by construction, and the
    checks cost a tenth of the time) and without automatic WAL checkpoints: a second
    connection checkpoints in the background after each commit, so that copying the
    WAL into the database file, and its fsyncs, overlap the next batch's inserts.
    Every few batches the checkpoint is waited for, which lets the WAL start over
    from its beginning instead of growing as large as everything seeded."""
    if not db.is_sqlite:
        yield db.write
        return
    with (
        db.engine.connect() as conn,
        concurrent.futures.ThreadPoolExecutor(1, "demo-seed-checkpoint") as checkpointer,
    ):
        raw = conn.connection.driver_connection
        (autocheckpoint,) = raw.execute("PRAGMA wal_autocheckpoint").fetchone()
        raw.execute("PRAGMA foreign_keys=OFF")
        raw.execute("PRAGMA wal_autocheckpoint=0")
        conn.execution_options(sqlite_begin="IMMEDIATE")
        running: list[concurrent.futures.Future] = []
        committed = 0

        def settle() -> None:
            for future in running:
                future.result()
            running.clear()
            _checkpoint(db)

        @contextlib.contextmanager
        def transaction() -> Iterator[Connection]:
            nonlocal committed
            with conn.begin():
                yield conn
            committed += 1
            if committed % _WAL_RESTART_BATCHES == 0:
                settle()
            elif not running or running[-1].done():
                running.append(checkpointer.submit(_checkpoint, db))

        try:
            yield transaction
            settle()  # the last batches, before the seed reports its time
            _checkpoint(db, truncate=True)
        finally:
            raw.execute("PRAGMA foreign_keys=ON")
            raw.execute(f"PRAGMA wal_autocheckpoint={int(autocheckpoint)}")


def _checkpoint(db: Database, *, truncate: bool = False) -> None:
    """Copy committed WAL frames into the database file; with truncate, also empty the
    WAL file if no reader needs it within a second (else leave that for later)."""
    with db.engine.connect() as conn:
        raw = conn.connection.driver_connection
        if not truncate:
            raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            return
        (timeout,) = raw.execute("PRAGMA busy_timeout").fetchone()
        raw.execute("PRAGMA busy_timeout=1000")
        try:
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        finally:
            raw.execute(f"PRAGMA busy_timeout={int(timeout)}")


def _reserve_ids(db: Database, conn, n: int) -> dict[str, int]:
    """The first id to use in each table for this batch. SQLite: the write lock is
    held, so max + 1. PostgreSQL: other writers are locked out of these tables for
    the transaction, and ids start past both the max and the serial's last value."""
    starts = {}
    if db.is_postgres:
        conn.exec_driver_sql(f"LOCK TABLE {', '.join(_ID_TABLES)} IN EXCLUSIVE MODE")
        for table in _ID_TABLES:
            seq = conn.exec_driver_sql(f"SELECT pg_get_serial_sequence('{table}', 'id')").scalar_one()
            starts[table] = conn.exec_driver_sql(
                f"SELECT GREATEST((SELECT COALESCE(MAX(id), 0) FROM {table}), "
                f"(SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END "
                f"FROM {seq})) + 1"
            ).scalar_one()
    else:
        for table in _ID_TABLES:
            starts[table] = conn.exec_driver_sql(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}").scalar_one()
    return starts


def _insert(
    db: Database, conn, rows: dict[str, list[tuple]], statements: list[tuple[str, list[tuple]]] | None
) -> None:
    raw = conn.connection.driver_connection
    if db.is_postgres:
        with raw.cursor() as cur:
            for table, columns in _TABLES:
                if not rows[table]:
                    continue
                with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    write_row = copy.write_row
                    for row in rows[table]:
                        write_row(row)
            for table in _ID_TABLES:
                if rows[table]:  # the serial must not hand out the ids just used
                    cur.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"GREATEST(%s, nextval(pg_get_serial_sequence('{table}', 'id'))))",
                        (rows[table][-1][0],),
                    )
        return
    cur = raw.cursor()
    try:
        for sql, params in statements:
            cur.executemany(sql, params)
    finally:
        cur.close()


# SQLite: rows per INSERT statement. Several rows per statement measured a third
# faster for the narrow tables, but slower for orders and order_items (their many
# indexes), which therefore go one row per statement.
_ROWS_PER_STATEMENT = {
    "order_events": 20,
    "payments": 20,
    "sim_charges": 20,
    "refunds": 20,
    "sim_refunds": 20,
}


def _sqlite_statements(rows: dict[str, list[tuple]]) -> list[tuple[str, list[tuple]]]:
    """(INSERT statement, parameter tuples) pairs for executemany, in insert order."""
    chain = itertools.chain.from_iterable
    statements = []
    for table, columns in _TABLES:
        data = rows[table]
        head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
        one = f"({', '.join('?' * len(columns))})"
        per = _ROWS_PER_STATEMENT.get(table, 1)
        whole = len(data) - len(data) % per
        if per > 1 and whole:
            statements.append(
                (head + ", ".join([one] * per), [tuple(chain(group)) for group in chunks(data[:whole], per)])
            )
        else:
            whole = 0
        if whole < len(data):
            statements.append((head + one, data[whole:]))
    return statements


@functools.cache
def _time_strings() -> list[str]:
    """'HH:MM:SS.000000' for each second of a day."""
    return [f"{h:02d}:{m:02d}:{s:02d}.000000" for h in range(24) for m in range(60) for s in range(60)]


class _Generator:
    """Makes batches of consistent order rows from precomputed pools."""

    def __init__(
        self,
        db: Database,
        total: int,
        random_seed: int,
        now: dt.datetime,
        staff: SeedStaff,
        fallback_address: FallbackAddress,
    ):
        self.total = total
        self.random_seed = random_seed
        self.fulfillers = (staff.ops,) * 4 + (staff.admin,)
        self.cancelers = (staff.support,) * 7 + (staff.ops,) * 2 + (staff.admin,)
        self.returners = (staff.support,) * 4 + (staff.ops,)
        self.fallback_address = fallback_address
        now = now.replace(microsecond=0)
        # Times are whole seconds since midnight of the first day, written as strings in
        # SQLAlchemy's own SQLite format (which PostgreSQL's COPY parses as well).
        first_day = (now - dt.timedelta(seconds=_SPAN + 86400)).date()
        base = calendar.timegm(first_day.timetuple())
        self.now_t = calendar.timegm(now.timetuple()) - base
        self.start_t = self.now_t - _SPAN
        days = self.now_t // 86400 + 2
        self.day_strings = [(first_day + dt.timedelta(days=d)).strftime("%Y-%m-%d ") for d in range(days)]
        self.time_strings = _time_strings()
        self._load(db)

    def _load(self, db: Database) -> None:
        with db.read() as conn:
            listing = conn.execute(
                select(
                    skus.c.id,
                    skus.c.code,
                    skus.c.name,
                    products.c.name,
                    skus.c.unit_amount,
                    skus.c.currency,
                    products.c.shippable,
                )
                .join(products, products.c.id == skus.c.product_id)
                .where(skus.c.active.is_(True), products.c.active.is_(True))
                .order_by(skus.c.id)
            ).all()
            people = conn.execute(
                select(customers.c.id, customers.c.email, customers.c.name).order_by(customers.c.id)
            ).all()
            saved: dict[int, list[tuple]] = {}
            for a in conn.execute(
                select(
                    addresses.c.customer_id,
                    addresses.c.name,
                    addresses.c.line1,
                    addresses.c.line2,
                    addresses.c.city,
                    addresses.c.region,
                    addresses.c.postal_code,
                    addresses.c.country,
                ).order_by(addresses.c.id)
            ):
                saved.setdefault(a[0], []).append(tuple("" if v is None else v for v in a[1:]))
        self.by_currency: dict[str, list[tuple]] = {}
        for row in listing:
            self.by_currency.setdefault(row[5], []).append(tuple(row))
        if not self.by_currency or not people:
            raise RuntimeError("seeding needs active SKUs and at least one customer")
        self.customers = []
        for cid, email, name in people:
            places = saved.get(cid)
            if not places:
                places = [self.fallback_address(cid, name)]
            self.customers.append((cid, email, name, places))

    def start(self, first_order_id: int) -> None:
        # The first order id is part of the seed: seeding again with the same
        # random_seed appends different orders rather than copies.
        self.rng = rng = random.Random(f"orders-desk-demo-orders:{self.random_seed}:{first_order_id}")
        self.currencies = [c for c, w in _CURRENCY_MIX for _ in range(w) if c in self.by_currency]
        if not self.currencies:
            self.currencies = sorted(self.by_currency)
        self.currencies *= max(1, 100 // len(self.currencies))
        self.carts = {c: [self._cart(rng, c) for _ in range(_CART_POOL)] for c in self.by_currency}
        self.recent_kinds = [k for k, w in enumerate(_RECENT_MIX) for _ in range(w)]
        self.older_kinds = [k for k, w in enumerate(_OLDER_MIX) for _ in range(w)]
        self.declines = [
            (code, f"Card declined: {code} — {DECLINE_MESSAGES[code]}", DECLINE_MESSAGES[code])
            for code in _DECLINES
        ]

    def _cart(self, rng: random.Random, currency: str) -> tuple:
        listing = self.by_currency[currency]
        lines = min(len(listing), rng.choice((1, 1, 1, 1, 1, 1, 2, 2, 2, 3)))
        items, total, shippable = [], 0, False
        for sku_id, code, name, product_name, unit, _cur, ships in rng.sample(listing, lines):
            quantity = rng.choice((1, 1, 1, 1, 1, 1, 1, 1, 2, 3))
            items.append((sku_id, code, name, product_name, quantity, unit, unit * quantity))
            total += unit * quantity
            shippable = shippable or bool(ships)
        return (tuple(items), total, len(items), shippable, format_money(total, currency))

    def batch(self, done: int, n: int, starts: dict[str, int]) -> dict[str, list[tuple]]:
        rng = self.rng
        r = rng.random
        bits = rng.getrandbits
        D, T = self.day_strings, self.time_strings
        now_t, start_t = self.now_t, self.start_t
        step = (_SPAN - 900) / self.total  # the newest order is at least 15 minutes old
        custs, nc = self.customers, len(self.customers)
        currencies, ncur = self.currencies, len(self.currencies)
        carts = self.carts
        recent_kinds, older_kinds = self.recent_kinds, self.older_kinds
        declines, nd = self.declines, len(self.declines)
        brands, nb = _CARD_BRANDS, len(_CARD_BRANDS)
        fulfillers, nf = self.fulfillers, len(self.fulfillers)
        cancelers, ncn = self.cancelers, len(self.cancelers)
        returners, nrt = self.returners, len(self.returners)
        cancel_reasons, ncr = _CANCEL_REASONS, len(_CANCEL_REASONS)
        return_reasons, nrr = _RETURN_REASONS, len(_RETURN_REASONS)
        noship = (None,) * 7
        number_of = format_order_number

        order_rows: list[tuple] = []
        item_rows: list[tuple] = []
        event_rows: list[tuple] = []
        payment_rows: list[tuple] = []
        charge_rows: list[tuple] = []
        refund_rows: list[tuple] = []
        sim_refund_rows: list[tuple] = []
        add_order, add_item, add_event = order_rows.append, item_rows.append, event_rows.append
        add_payment, add_charge = payment_rows.append, charge_rows.append
        add_refund, add_sim_refund = refund_rows.append, sim_refund_rows.append

        oid0 = starts["orders"]
        iid, eid, pid, rid = (
            starts["order_items"],
            starts["order_events"],
            starts["payments"],
            starts["refunds"],
        )
        for k in range(n):
            oid = oid0 + k
            number = number_of(oid)
            t = start_t + int((done + k + r()) * step)
            kind = (recent_kinds if now_t - t < _RECENT else older_kinds)[int(r() * 1000)]
            cid, email, cname, places = custs[int(r() * nc)]
            cur = currencies[int(r() * ncur)]
            items, total, count, ships, money = carts[cur][int(r() * _CART_POOL)]
            ship = (places[0] if len(places) == 1 else places[int(r() * len(places))]) if ships else noship
            created = D[t // 86400] + T[t % 86400]
            for item in items:
                add_item((iid, oid) + item)
                iid += 1
            add_event((eid, oid, created, email, "create", None, "created", "Checkout"))
            eid += 1
            paid = fulfilled = canceled = returned = None
            refunded = 0
            updated = created
            if kind == 0:
                status = "created"
            elif kind == 1:
                status = "created"
                g = 5 + int(r() * 900)
                lim = (now_t - t) * 0.45
                tf = t + (g if g < lim else int(lim) or 1)
                failed_at = D[tf // 86400] + T[tf % 86400]
                code, note, message = declines[int(r() * nd)]
                # Gateway ids: the order id in 10 hex digits (unique, and ascending, which
                # keeps the ledger's primary key index cheap to fill), 14 random ones.
                pi = "pi_sim_%010x%014x" % (oid, bits(56))
                add_charge((pi, total, cur, "requires_payment_method", "visa", code, number, failed_at))
                add_payment(
                    (
                        pid,
                        oid,
                        "simulated",
                        pi,
                        total,
                        cur,
                        "failed",
                        charge_key(number, 1),
                        code,
                        message,
                        failed_at,
                        failed_at,
                    )
                )
                pid += 1
                add_event((eid, oid, failed_at, email, "payment_failed", "created", None, note))
                eid += 1
            elif kind == 4:
                status = "canceled"
                g = 600 + int(r() * 172800)
                lim = (now_t - t) * 0.45
                t += g if g < lim else int(lim) or 1
                updated = canceled = D[t // 86400] + T[t % 86400]
                add_event(
                    (
                        eid,
                        oid,
                        canceled,
                        cancelers[int(r() * ncn)],
                        "cancel",
                        "created",
                        "canceled",
                        cancel_reasons[int(r() * ncr)],
                    )
                )
                eid += 1
            else:
                # paid first
                g = 30 + int(r() * r() * 21600)
                lim = (now_t - t) * 0.45
                t += g if g < lim else int(lim) or 1
                updated = paid = D[t // 86400] + T[t % 86400]
                pi = "pi_sim_%010x%014x" % (oid, bits(56))
                add_charge((pi, total, cur, "succeeded", brands[int(r() * nb)], None, number, paid))
                payment_id = pid
                add_payment(
                    (
                        pid,
                        oid,
                        "simulated",
                        pi,
                        total,
                        cur,
                        "succeeded",
                        charge_key(number, 1),
                        None,
                        None,
                        paid,
                        paid,
                    )
                )
                pid += 1
                add_event(
                    (eid, oid, paid, email, "pay", "created", "paid", charged_note(money, "simulated", pi))
                )
                eid += 1
                if kind == 2:
                    status = "paid"
                else:
                    if kind == 5:
                        status = "canceled"
                        g = 600 + int(r() * 259200)
                        action, source = "cancel", "paid"
                        actor = cancelers[int(r() * ncn)]
                        reason = cancel_reasons[int(r() * ncr)]
                    else:
                        g = 3600 + int(r() * 345600)
                        lim = (now_t - t) * 0.45
                        t += g if g < lim else int(lim) or 1
                        updated = fulfilled = D[t // 86400] + T[t % 86400]
                        add_event(
                            (
                                eid,
                                oid,
                                fulfilled,
                                fulfillers[int(r() * nf)],
                                "fulfill",
                                "paid",
                                "fulfilled",
                                "",
                            )
                        )
                        eid += 1
                        if kind == 3:
                            status = "fulfilled"
                        else:
                            status = "returned"
                            g = 86400 + int(r() * 1728000)
                            action, source = "return", "fulfilled"
                            actor = returners[int(r() * nrt)]
                            reason = return_reasons[int(r() * nrr)]
                    if kind != 3:
                        lim = (now_t - t) * 0.45
                        t += g if g < lim else int(lim) or 1
                        at = D[t // 86400] + T[t % 86400]
                        if kind == 5:
                            updated = canceled = at
                        else:
                            updated = returned = at
                        refunded = total
                        re = "re_sim_%010x%014x" % (oid, bits(56))
                        key = refund_key(number, 1)
                        add_refund(
                            (
                                rid,
                                oid,
                                payment_id,
                                "simulated",
                                re,
                                total,
                                cur,
                                "succeeded",
                                key,
                                action,
                                actor,
                                reason,
                                at,
                                at,
                            )
                        )
                        rid += 1
                        add_sim_refund((re, pi, total, cur, key, at))
                        add_event(
                            (eid, oid, at, actor, action, source, status, refunded_note(money, re, reason))
                        )
                        eid += 1
            add_order(
                (
                    oid,
                    number,
                    cid,
                    email,
                    cname,
                    status,
                    cur,
                    total,
                    refunded,
                    count,
                    created,
                    updated,
                    paid,
                    fulfilled,
                    canceled,
                    returned,
                )
                + ship
            )
        return {
            "orders": order_rows,
            "order_items": item_rows,
            "order_events": event_rows,
            "sim_charges": charge_rows,
            "payments": payment_rows,
            "refunds": refund_rows,
            "sim_refunds": sim_refund_rows,
        }


__all__ = ["append_orders", "SeedReport", "SeedStaff", "FallbackAddress", "STATUSES"]
