"""What one checkout sends to the database, pinned by count (not time): its
statements, its transactions and the connections it takes from the pool. A change
that adds a round trip to every order fails here and has to say why."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, func, insert, select
from sqlalchemy.pool import NullPool

from orders_core.checkout import place_order
from orders_core.customers import add_address
from orders_core.schema import order_events, orders
from orders_core.status import Status
from tests.integration.conftest import HOME
from tests.support.round_trips import counting

# The order, its items, its creation event and its pending payment (tx 1, committed before
# the gateway is called), the gateway's payment id (tx 2, between create and confirm), the
# paid move and its event (tx 3), the order detail it returns (a read: 5 SELECTs).
CHECKOUT_STATEMENTS = 16
CHECKOUT_TRANSACTIONS = 4
# One connection for all of ours (Database.one_connection), one for each of the
# simulated gateway's two calls (create, confirm), which run on the pool's raw connections.
CHECKOUT_CONNECTIONS = 3
# PostgreSQL, every round trip on the wire, the simulated gateway's included: its create
# and its confirm, one statement each in autocommit (1 + 1); tx 1: BEGIN, 6 statements (the
# order numbered in its own INSERT), COMMIT (8); the gateway's payment id and the paid move
# (with its event and the payment settled), one statement each in autocommit (1 + 1); the
# order detail's 5 SELECTs in autocommit (5). No pings (a connection used a moment ago is
# not pinged), no DEALLOCATE. Before issue #13 §4: 39 (each connection pinged, the gateway's
# two transactions of 3-4 statements, tx 2 and tx 3 as transactions, the read a transaction
# ending in ROLLBACK).
CHECKOUT_ROUND_TRIPS_POSTGRES = 17


def test_one_checkout_sends_sixteen_statements_in_four_transactions_on_one_connection(customer, db):
    saved = add_address(db, customer, HOME)
    place_order(db, customer, items=[("BOX-USD", 1), ("PASS-USD", 2)], token="tok_visa", address_id=saved.id)
    with counting(db.engine) as sent:
        order = place_order(
            db, customer, items=[("BOX-USD", 1), ("PASS-USD", 2)], token="tok_visa", address_id=saved.id
        )
    assert order.status == Status.PAID
    assert sent.checkouts == CHECKOUT_CONNECTIONS
    if db.is_postgres:
        assert sent.total == CHECKOUT_ROUND_TRIPS_POSTGRES, sent.wire_sql
        assert not any(s.strip('"') in (";", "SELECT 1") or "DEALLOCATE" in s for s in sent.wire_sql)
    else:
        assert sent.statements == CHECKOUT_STATEMENTS, sent.sql
        assert sent.transactions == CHECKOUT_TRANSACTIONS
    assert not any("count" in s.lower() and "payments" in s for s in sent.sql), (
        "a new order has no earlier payment attempt to count"
    )


def test_blocks_inside_one_connection_are_each_their_own_transaction(db, customer):
    place_order(db, customer, items=[("PASS-USD", 1)], token="tok_visa")
    with counting(db.engine) as sent, db.one_connection():
        with db.write() as conn:
            conn.execute(
                insert(order_events).values(order_id=1, at=func.now(), actor="t", action="note", note="kept")
            )
        with pytest.raises(RuntimeError), db.write() as conn:
            conn.execute(
                insert(order_events).values(
                    order_id=1, at=func.now(), actor="t", action="note", note="undone"
                )
            )
            raise RuntimeError("rolls back this block only")
        with db.read() as outer:
            # a block opened while another is in progress gets a connection of its own
            with db.write() as inner:
                assert inner is not outer
                inner.execute(
                    insert(order_events).values(
                        order_id=1, at=func.now(), actor="t", action="note", note="inner"
                    )
                )
            notes = set(outer.execute(select(order_events.c.note)).scalars())
    assert {"kept"} <= notes and "undone" not in notes
    with db.read() as conn:
        assert set(
            conn.execute(select(order_events.c.note).where(order_events.c.actor == "t")).scalars()
        ) == {
            "kept",
            "inner",
        }
        assert conn.execute(select(func.count()).select_from(orders)).scalar_one() == 1
    assert sent.checkouts == 2  # the held connection and the inner block's own


@pytest.mark.postgres
def test_a_pooled_connection_the_server_closed_while_idle_is_replaced_when_taken(postgres_db, monkeypatch):
    from orders_core import db as orders_db

    with postgres_db.read() as conn:
        closed_pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
    admin = create_engine(postgres_db.url, poolclass=NullPool)
    with admin.connect() as other:
        other.exec_driver_sql(f"SELECT pg_terminate_backend({closed_pid})")
    admin.dispose()
    monkeypatch.setattr(orders_db, "PING_IDLE_SECONDS", 0.0)  # every connection counts as idle
    with postgres_db.read() as conn:
        assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one() != closed_pid


def test_an_order_is_numbered_from_its_id_past_a_million(db, customer):
    if db.is_postgres:  # the number is made in SQL there, in the INSERT itself
        with db.write() as conn:
            conn.exec_driver_sql("SELECT setval(pg_get_serial_sequence('orders', 'id'), 999998)")
    else:
        with db.write() as conn:
            conn.execute(
                insert(orders).values(
                    id=999998,
                    number="ORD-999998",
                    customer_id=customer.id,
                    customer_email=customer.email,
                    customer_name=customer.name,
                    status="created",
                    currency="usd",
                    total_amount=1,
                    refunded_amount=0,
                    item_count=1,
                    created_at=func.now(),
                    updated_at=func.now(),
                )
            )
    numbers = [place_order(db, customer, items=[("PASS-USD", 1)], token="tok_visa").number for _ in range(2)]
    assert numbers == ["ORD-999999", "ORD-1000000"]
    with db.read() as conn:
        stored = conn.execute(select(orders.c.id, orders.c.number).where(orders.c.number.in_(numbers))).all()
    assert sorted(stored) == [(999999, "ORD-999999"), (1000000, "ORD-1000000")]
