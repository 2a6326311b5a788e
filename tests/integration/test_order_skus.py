"""order_skus, each order's SKUs with the order's status and creation time, kept by the
database with the orders and their items (migration 0013): whatever writes them, it
equals recomputing it from the orders, on SQLite and PostgreSQL; the SKU views it
drives answer exactly what the orders themselves do."""

from __future__ import annotations

import datetime as dt
import os
import random

import pytest
from sqlalchemy import delete, func, select, update

from orders_core import demo, jobs, lifecycle, order_counts
from orders_core.checkout import place_order
from orders_core.db import Database, create_database_engine, forget_databases, migrate
from orders_core.errors import CardDeclined, OrdersError
from orders_core.job_engine import run_job_here
from orders_core.queries import (
    OrderFilters,
    count_by_status,
    list_orders,
    matching_order_ids,
    tab_counts,
)
from orders_core.schema import order_items, order_skus, orders
from orders_core.staff import SYSTEM
from orders_core.status import Status
from tests.integration.conftest import HOME
from tests.support import postgres as pg
from tests.support.migrations import upgrade_to

F = OrderFilters.parse
CODES = ("BOX-USD", "PASS-USD", "PASS-EUR", "PASS-JPY")


def recomputed(db) -> set[tuple]:
    """(sku_id, status, created_at, order_id, total_amount, currency) of every order and
    SKU it lists, from the orders and their items, in Python."""
    with db.read() as conn:
        by_id = {o.id: o for o in conn.execute(select(orders))}
        pairs = {(i.order_id, i.sku_id) for i in conn.execute(select(order_items))}
    return {
        (sku, by_id[o].status, by_id[o].created_at, o, by_id[o].total_amount, by_id[o].currency)
        for o, sku in pairs
    }


def kept(db) -> set[tuple]:
    with db.read() as conn:
        return {tuple(r) for r in conn.execute(select(order_skus))}


def assert_kept_equals_the_orders(db) -> None:
    assert kept(db) == recomputed(db)
    assert order_counts.sku_row_mismatches(db) == []


def test_random_operations_on_every_write_path_keep_the_rows_equal_to_the_orders(db, customer, monkeypatch):
    monkeypatch.setenv("ORDERS_JOB_CHUNK_SIZE", "3")
    rng = random.Random(13)
    numbers: list[str] = []

    def checkout():
        lines = [(rng.choice(CODES[:2]), rng.randint(1, 2)) for _ in range(rng.randint(1, 3))]
        token = "tok_chargeDeclined" if rng.random() < 0.2 else "tok_visa"
        try:
            numbers.append(place_order(db, customer, items=lines, token=token, address=HOME).number)
        except CardDeclined:
            pass  # a Created order all the same

    def move_one():
        if numbers:
            move = rng.choice((lifecycle.fulfill_order, lifecycle.cancel_order, lifecycle.return_order))
            try:
                move(db, SYSTEM, rng.choice(numbers))
            except OrdersError:
                pass  # not a legal move for that order's status

    def bulk():
        if numbers:
            job = jobs.enqueue(
                db,
                SYSTEM,
                rng.choice(("fulfill", "cancel")),
                order_numbers=rng.sample(numbers, min(5, len(numbers))),
            )
            run_job_here(db, job.id)

    def raw_change():
        with db.write() as conn:
            ids = list(conn.execute(select(orders.c.id)).scalars())
            if not ids:
                return
            target = rng.choice(ids)
            what = rng.randrange(4)
            if what == 0:  # a moved creation time
                conn.execute(
                    update(orders)
                    .where(orders.c.id == target)
                    .values(created_at=dt.datetime(2024, 1, rng.randint(1, 28), 12, 0, 0), total_amount=777)
                )
            elif what == 1:  # a line moved to another SKU
                line = conn.execute(select(order_items.c.id).where(order_items.c.order_id == target)).first()
                if line:
                    conn.execute(update(order_items).where(order_items.c.id == line.id).values(sku_id=3))
            elif what == 2:  # one line deleted (the order may list its SKU again)
                line = conn.execute(select(order_items.c.id).where(order_items.c.order_id == target)).first()
                if line:
                    conn.execute(delete(order_items).where(order_items.c.id == line.id))
            else:  # many orders moved by one statement
                conn.execute(update(orders).where(orders.c.status == "paid").values(status="fulfilled"))

    operations = [checkout] * 4 + [move_one] * 3 + [bulk, raw_change]
    for step in range(40):
        rng.choice(operations)()
        if step % 8 == 7:
            assert_kept_equals_the_orders(db)
    assert_kept_equals_the_orders(db)
    assert len(kept(db)) > 10


def test_the_seeds_batches_keep_the_rows_too(shop):
    assert_kept_equals_the_orders(shop)
    demo.seed(shop, orders=70, random_seed=5)  # appended to orders that have rows already
    with shop.write() as conn:
        conn.execute(update(orders).where(orders.c.status == "created").values(status="canceled"))
    assert_kept_equals_the_orders(shop)


def test_an_order_listing_a_sku_twice_has_one_row_until_its_last_line_goes(db, customer):
    items = [("PASS-USD", 1), ("BOX-USD", 1)]
    number = place_order(db, customer, items=items, token="tok_visa", address=HOME).number
    with db.write() as conn:
        order_id = conn.execute(select(orders.c.id).where(orders.c.number == number)).scalar_one()
        line = conn.execute(select(order_items).where(order_items.c.order_id == order_id).limit(1)).one()
        conn.execute(
            order_items.insert().values(
                {k: getattr(line, k) for k in line._fields if k != "id"},
            )
        )
    assert len([r for r in kept(db) if r[0] == line.sku_id]) == 1
    with db.write() as conn:
        lines = conn.execute(
            select(order_items.c.id).where(
                order_items.c.order_id == order_id, order_items.c.sku_id == line.sku_id
            )
        ).scalars()
        first, second = list(lines)
        conn.execute(delete(order_items).where(order_items.c.id == first))
    assert {r[0] for r in kept(db) if r[3] == order_id} == {1, 2}
    with db.write() as conn:
        conn.execute(delete(order_items).where(order_items.c.id == second))
    assert_kept_equals_the_orders(db)
    assert {r[0] for r in kept(db) if r[3] == order_id} == {1, 2} - {line.sku_id}


@pytest.fixture
def shop(db):
    demo.seed(db, orders=500, random_seed=21)
    return db


def _dates(db) -> tuple[dt.date, dt.date]:
    with db.read() as conn:
        low, high = conn.execute(select(func.min(orders.c.created_at), func.max(orders.c.created_at))).one()
    return low.date(), high.date()


def _sku_views(db) -> list[OrderFilters]:
    first, last = _dates(db)
    mid = first + (last - first) / 2
    return [
        F(sku="TOTE-USD"),
        F(sku="TOTE-USD", status="fulfilled"),
        F(sku="BOX-MONTHLY-USD", created_from=mid),
        F(sku="BOX-MONTHLY-USD", created_to=mid),
        F(sku="PASS-DAY-USD", status="paid", created_from=first, created_to=mid),
        F(sku="EBOOK-BUNDLE-GBP", status="fulfilled", currency="gbp", max_total="100"),
        F(sku="BOX-MONTHLY-USD", currency="usd", min_total="40"),
        F(sku="COFFEE-SAMPLER-USD", unfulfilled_days=3),
        F(sku="RETIRED-MUG"),
        F(sku="NO-SUCH-SKU", status="paid"),
    ]


def test_sku_views_list_and_count_what_the_orders_themselves_do(shop):
    for filters in _sku_views(shop):
        with shop.read() as conn:  # the reference: the orders and their items, no order_skus
            ids = matching_order_ids(conn, filters)
            expected = conn.execute(
                select(orders.c.id, orders.c.created_at).where(orders.c.id.in_(ids))
            ).all()
        exact = count_by_status(shop, filters.with_status(None), actor=SYSTEM)
        for limit in (1, 7, max(1, exact["all"] - 1), exact["all"] + 1, 10_000):
            tabs = tab_counts(shop, filters, actor=SYSTEM, limit=limit)
            if exact["all"] <= limit:
                assert tabs.exact and tabs.counts == exact, filters.describe()
            else:
                assert not tabs.exact and tabs.counts["all"] == limit, filters.describe()
                assert all(tabs.counts[s.value] is None for s in Status)
            for descending in (True, False):
                ordered = sorted(expected, key=lambda r: (r.created_at, r.id), reverse=descending)
                for page in (1, 2, 4):
                    listed = list_orders(
                        shop,
                        filters,
                        actor=SYSTEM,
                        page=page,
                        page_size=6,
                        descending=descending,
                        count_limit=limit,
                        tabs=tabs if page == 1 else None,
                    )
                    want = [r.id for r in ordered[(page - 1) * 6 : page * 6]]
                    assert [r["id"] for r in listed.rows] == want, (filters.describe(), limit, page)
                    if len(ids) <= limit:
                        assert listed.total_exact and listed.total == len(ids)
                    else:
                        assert not listed.total_exact and listed.total >= limit


def test_a_tampered_row_is_found_and_a_rebuild_mends_it(shop):
    with shop.write() as conn:
        row = conn.execute(select(order_skus).limit(1)).one()
        conn.execute(
            update(order_skus)
            .where(order_skus.c.order_id == row.order_id, order_skus.c.sku_id == row.sku_id)
            .values(status="returned" if row.status != "returned" else "paid")
        )
        gone = conn.execute(select(order_skus).where(order_skus.c.order_id != row.order_id).limit(1)).one()
        conn.execute(
            delete(order_skus).where(
                order_skus.c.order_id == gone.order_id, order_skus.c.sku_id == gone.sku_id
            )
        )
    found = {(m.order_id, m.sku_id): m for m in order_counts.sku_row_mismatches(shop)}
    assert set(found) == {(row.order_id, row.sku_id), (gone.order_id, gone.sku_id)}
    assert found[(row.order_id, row.sku_id)].counted[0] == row.status
    assert found[(gone.order_id, gone.sku_id)].kept is None
    assert order_counts.rebuild_sku_rows(shop) == len(recomputed(shop))
    assert_kept_equals_the_orders(shop)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_database_url(request, tmp_path):
    """A database with no tables at all, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    server = request.getfixturevalue("postgres_server")
    name = f"old_{os.getpid()}"
    yield pg.create_database(server, name)
    forget_databases()
    pg.drop_database(server, name)


def test_a_database_with_orders_before_the_rows_existed_gets_them_when_migrated(empty_database_url):
    """Migrate to 0012, add orders the old way, then migrate to the head."""
    engine = create_database_engine(empty_database_url)
    try:
        upgrade_to(engine, "0012")
        db = Database(engine)
        demo.seed(db, orders=40, random_seed=2)
        migrate(engine)
        assert_kept_equals_the_orders(db)
        assert len(kept(db)) >= 40
    finally:
        engine.dispose()


def test_a_page_sorted_by_status_is_the_one_sorting_every_order_gives(shop):
    """The list sorted by status reads each status along the order ids, told by the kept
    counts where the page starts: the same rows as ORDER BY status, id over all orders."""
    for filters in (F(), F(status="paid"), F(currency="usd")):
        with shop.read() as conn:
            ids = matching_order_ids(conn, filters)
            every = conn.execute(select(orders.c.id, orders.c.status).where(orders.c.id.in_(ids))).all()
        for descending in (False, True):
            ordered = [r.id for r in sorted(every, key=lambda r: (r.status, r.id), reverse=descending)]
            for page in (1, 2, 9, 30, 84):
                listed = list_orders(
                    shop, filters, actor=SYSTEM, page=page, page_size=6, sort="status", descending=descending
                )
                assert [r["id"] for r in listed.rows] == ordered[(page - 1) * 6 : page * 6], (filters, page)
                assert listed.total == len(ids)
