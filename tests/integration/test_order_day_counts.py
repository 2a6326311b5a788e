"""order_day_counts, kept by the database with the orders (migration 0005): whatever
writes orders, the counts per day, status and currency equal counting the orders, on
SQLite and PostgreSQL. The orders page's tabs read them (queries.count_by_status)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, insert, select, update

from orders_core import demo, jobs, lifecycle, order_counts
from orders_core.checkout import place_order
from orders_core.db import create_database_engine, migrate
from orders_core.errors import CardDeclined
from orders_core.job_engine import run_job_here
from orders_core.queries import OrderFilters, count_by_status, list_orders
from orders_core.schema import order_day_counts, orders
from orders_core.staff import SYSTEM
from tests.support.migrations import upgrade_to


def kept(db) -> dict[tuple, int]:
    with db.read() as conn:
        return {
            (r.day, r.status, r.currency): r.orders
            for r in conn.execute(select(order_day_counts))
            if r.orders
        }


def test_every_write_path_keeps_the_counts_equal_to_the_orders(db, customer, monkeypatch):
    monkeypatch.setenv("ORDERS_JOB_CHUNK_SIZE", "3")
    numbers = [place_order(db, customer, items=[("PASS-USD", 1)], token="tok_visa").number for _ in range(8)]
    try:
        place_order(db, customer, items=[("PASS-EUR", 1)], token="tok_chargeDeclined")
    except CardDeclined:
        pass  # a Created order
    lifecycle.fulfill_order(db, SYSTEM, numbers[0])
    lifecycle.return_order(db, SYSTEM, numbers[0])
    lifecycle.cancel_order(db, SYSTEM, numbers[1])
    job = jobs.enqueue(db, SYSTEM, "fulfill", order_numbers=numbers[2:])
    run_job_here(db, job.id)  # several chunks, set-based updates of many rows
    assert order_counts.mismatches(db) == []
    today = dt.datetime.utcnow().date()
    assert kept(db) == {
        (today, "fulfilled", "usd"): 6,
        (today, "returned", "usd"): 1,
        (today, "canceled", "usd"): 1,
        (today, "created", "eur"): 1,
    }
    counts = count_by_status(db, OrderFilters.parse(created_from=today, created_to=today), actor=SYSTEM)
    assert (counts["all"], counts["fulfilled"], counts["created"]) == (9, 6, 1)
    assert list_orders(db, OrderFilters.parse(status="fulfilled"), actor=SYSTEM).total == 6


def test_the_seed_a_moved_date_a_deleted_order_and_a_many_row_update_are_counted(db):
    demo.seed(db, orders=300, random_seed=4)
    assert order_counts.mismatches(db) == []
    with db.write() as conn:
        first = conn.execute(select(orders).order_by(orders.c.id).limit(1)).one()
        conn.execute(
            update(orders)
            .where(orders.c.id == first.id)
            .values(created_at=dt.datetime(2021, 3, 4, 5, 6, 7), currency="gbp")
        )
        bare = {
            c: getattr(first, c)
            for c in (
                "customer_id",
                "customer_email",
                "customer_name",
                "total_amount",
                "created_at",
                "updated_at",
            )
        }
        doomed = conn.execute(
            insert(orders).values(
                number="ORD-DOOMED", status="created", currency="jpy", refunded_amount=0, item_count=0, **bare
            )
        ).inserted_primary_key[0]
    assert kept(db)[(first.created_at.date(), "created", "jpy")] == 1
    with db.write() as conn:
        conn.execute(delete(orders).where(orders.c.id == doomed))
        conn.execute(update(orders).where(orders.c.status == "paid").values(status="fulfilled"))
        conn.execute(update(orders).values(refunded_amount=orders.c.refunded_amount))  # no move
    assert order_counts.mismatches(db) == []
    assert kept(db)[(dt.date(2021, 3, 4), _status_of(db, first.id), "gbp")] == 1
    assert (first.created_at.date(), "created", "jpy") not in kept(db)
    assert "paid" not in {status for _, status, _ in kept(db)}


def _status_of(db, order_id: int) -> str:
    with db.read() as conn:
        return conn.execute(select(orders.c.status).where(orders.c.id == order_id)).scalar_one()


def test_a_tampered_count_is_found_and_a_rebuild_mends_it(db):
    demo.seed(db, orders=50, random_seed=8)
    with db.write() as conn:
        row = conn.execute(select(order_day_counts).limit(1)).one()
        conn.execute(
            update(order_day_counts)
            .where(
                order_day_counts.c.day == row.day,
                order_day_counts.c.status == row.status,
                order_day_counts.c.currency == row.currency,
            )
            .values(orders=row.orders + 5)
        )
        conn.execute(
            insert(order_day_counts).values(day=dt.date(2020, 1, 1), status="paid", currency="usd", orders=2)
        )
    found = order_counts.mismatches(db)
    assert {(m.day, m.kept - m.counted) for m in found} == {(row.day, 5), (dt.date(2020, 1, 1), 2)}
    assert order_counts.rebuild(db) > 0
    assert order_counts.mismatches(db) == []


def test_a_database_with_orders_before_the_counts_existed_gets_them_when_migrated(tmp_path):
    """Migrate to 0004, add orders the old way, then migrate to the head."""
    from orders_core.db import Database

    engine = create_database_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        upgrade_to(engine, "0004")
        db = Database(engine)
        demo.seed(db, orders=40, random_seed=2)
        migrate(engine)
        assert order_counts.mismatches(db) == []
        assert sum(kept(db).values()) == 40
    finally:
        engine.dispose()
