"""#5 Checkout: orders per second through orders_core.checkout.place_order with the
simulated gateway, one process, one thread, on a scratch copy of the benchmark
database (so the indexes are their full size).

Each checkout is the demo customer buying one or two SKUs of one currency with
tok_visa, to a saved address when something ships: the order, its items, the pending
payment, the gateway's create and confirm (its own ledger, its own transactions), the
paid move and its event, then the order detail it returns.

Baseline, same run: the smallest write transaction through the same Database (one
row inserted into a scratch table, BEGIN IMMEDIATE ... COMMIT). A checkout is several
such transactions by design (crash safety commits between gateway calls), so the
ratio (<1) says how many of them it costs.

Beside it, what one checkout sends to the database, counted with SQLAlchemy's event
hooks (tests/support/round_trips.py; tests/integration/test_checkout_round_trips.py pins
it): statements, transactions, pooled connections and round trips: on PostgreSQL those
seen on the wire (libpq's trace of every connection taken meanwhile, the simulated
gateway's included); on SQLite computed from the statements and transactions."""

from __future__ import annotations

from sqlalchemy import select

from orders_core.checkout import place_order
from orders_core.customers import list_addresses, sign_in
from orders_core.db import Database
from orders_core.demo import DEMO_CUSTOMER_EMAIL, DEMO_PASSWORD
from orders_core.payments import Gateways
from orders_core.schema import skus

from .common import Figure, Stats, log, timer

CARTS = (
    [("TOTE-USD", 1)],
    [("PASS-DAY-USD", 2)],
    [("BOX-MONTHLY-USD", 1), ("TOTE-USD", 1)],
    [("COFFEE-SAMPLER-USD", 1)],
    [("PASS-ANNUAL-USD", 1), ("PASS-DAY-USD", 1)],
)


def count_for(orders: int) -> int:
    return max(20, min(1_000, orders // 1000))


def floor_rate(db: Database, n: int) -> float:
    key = "INTEGER PRIMARY KEY" if db.is_sqlite else "SERIAL PRIMARY KEY"
    with db.write() as conn:
        conn.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS bench_tx (id {key}, note VARCHAR(32))")
    with timer() as elapsed:
        for _ in range(n):
            with db.write() as conn:
                conn.exec_driver_sql("INSERT INTO bench_tx (note) VALUES ('x')")
    return n / elapsed()


def round_trips(db: Database, customer, cart, address: int, gateways: Gateways):
    from tests.support.round_trips import counting

    with counting(db.engine) as sent:
        place_order(db, customer, items=cart, token="tok_visa", address_id=address, gateways=gateways)
    return sent


def run(db: Database, backend: str, *, repeat: int, orders: int) -> list[Figure]:
    customer = sign_in(db, email=DEMO_CUSTOMER_EMAIL, password=DEMO_PASSWORD)
    address = list_addresses(db, customer)[0].id
    with db.read() as conn:
        active = set(conn.execute(select(skus.c.code).where(skus.c.active.is_(True))).scalars())
    carts = [c for c in CARTS if all(code in active for code, _ in c)]
    gateways = Gateways(db)
    n = count_for(orders)
    rates, floors = [], []
    for i in range(repeat):
        with timer() as elapsed:
            for k in range(n):
                place_order(
                    db,
                    customer,
                    items=carts[k % len(carts)],
                    token="tok_visa",
                    address_id=address,
                    gateways=gateways,
                )
        rates.append(n / elapsed())
        floors.append(floor_rate(db, n))
        log(
            f"checkout: repeat {i + 1}/{repeat}: {rates[-1]:,.0f} orders/s "
            f"(one-row write transactions: {floors[-1]:,.0f}/s)"
        )
    shipped = next((c for c in carts if len(c) > 1), carts[0])
    sent = round_trips(db, customer, shipped, address, gateways)
    log(
        f"checkout: one order sends {sent.statements} statements in {sent.transactions} transactions "
        f"on {sent.checkouts} pooled connections: {sent.total} round trips"
    )
    rate = Figure(
        key=f"checkout.{backend}",
        title=f"Checkout, place_order with the simulated gateway ({n:,} orders, one process)",
        backend=backend,
        value=Stats.of(rates, "orders/s"),
        better="higher",
        baseline=Stats.of(floors, "transactions/s"),
        baseline_title="one-row write transaction",
        target="≥ 200 orders/s" if backend == "postgresql" else "",
        met=(Stats.of(rates, "x").median >= 200) if backend == "postgresql" and orders >= 1_000_000 else None,
        extra={"orders_per_repeat": n, "round_trips": sent.total},
    )
    trips = Figure(
        key=f"checkout_round_trips.{backend}",
        title="Checkout: round trips of one order to the database (counted, statements + transactions)",
        backend=backend,
        value=Stats.of([float(sent.total)], "round trips"),
        better="lower",
        notes=(
            (
                f"on the wire, the simulated gateway's included: {sent.statements} statements of ours"
                f" through SQLAlchemy (the first transaction's, the rest in autocommit) on"
                f" {sent.checkouts} pooled connections, none pinged; before issue #13 §4: 39 on the"
                " wire, of which 27 counted then (the gateway's 12 were not)"
            )
            if sent.wire is not None
            else (
                f"{sent.statements} statements in {sent.transactions} transactions (each a BEGIN and a"
                f" COMMIT or ROLLBACK) on {sent.checkouts} pooled connections"
                + (", each pinged when taken" if sent.pings_per_checkout else "")
                + "; the simulated gateway's ledger statements are not counted"
            )
        ),
        extra={
            "statements": sent.statements,
            "transactions": sent.transactions,
            "checkouts": sent.checkouts,
            "wire_round_trips": sent.wire,
        },
    )
    return [rate, trips]
