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
ratio (<1) says how many of them it costs."""

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


def run(db: Database, backend: str, *, repeat: int, orders: int) -> Figure:
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
    return Figure(
        key=f"checkout.{backend}",
        title=f"Checkout, place_order with the simulated gateway ({n:,} orders, one process)",
        backend=backend,
        value=Stats.of(rates, "orders/s"),
        better="higher",
        baseline=Stats.of(floors, "transactions/s"),
        baseline_title="one-row write transaction",
        target="",
        met=None,
        extra={"orders_per_repeat": n},
    )
