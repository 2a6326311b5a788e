"""A mass Fulfill's chunks are set-based (orders_core/job_engine/plain_moves.py): claimed,
moved, written to the timeline and recorded in one transaction; the orders that cannot
move that way go through lifecycle.apply_moves, which says why. On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, insert, select

from orders_core import jobs
from orders_core.job_engine import plain_moves
from orders_core.schema import disputes, job_items, order_events, orders
from orders_core.staff import SYSTEM
from orders_core.status import Action
from tests.integration.test_jobs import OPS, items_of, make_worker, new_orders, run, status_of
from tests.support.fakes import SimulatedCrash


def fulfil_events(db, job_id: int) -> list:
    with db.read() as conn:
        return conn.execute(
            select(order_events).where(order_events.c.job_id == job_id).order_by(order_events.c.order_id)
        ).all()


def test_only_a_move_without_refunds_from_one_status_is_made_set_based():
    fulfill = plain_moves.plain_move(Action.FULFILL)
    assert fulfill is not None and (fulfill.source.value, fulfill.target.value) == ("paid", "fulfilled")
    assert plain_moves.plain_move(Action.CANCEL) is None  # paid orders are refunded
    assert plain_moves.plain_move(Action.RETURN) is None
    assert plain_moves.plain_move(None) is None  # an export


def test_each_order_gets_its_event_and_its_item_recorded_in_the_chunk_that_moves_it(db, customer):
    numbers = new_orders(db, customer, 5)
    job = jobs.enqueue(db, OPS, "fulfill", order_numbers=numbers, reason="Shipped from the new warehouse")
    w = make_worker(db, job_chunk_size=2)
    assert w.run_once() == 5
    w.close()

    assert [status_of(db, n) for n in numbers] == ["fulfilled"] * 5
    events = fulfil_events(db, job.id)
    assert [(e.actor, e.action, e.from_status, e.to_status, e.note) for e in events] == [
        (OPS.email, "fulfill", "paid", "fulfilled", "Shipped from the new warehouse")
    ] * 5
    with db.read() as conn:
        fulfilled_at = dict(
            conn.execute(
                select(orders.c.number, orders.c.fulfilled_at).where(orders.c.number.in_(numbers))
            ).all()
        )
    assert [fulfilled_at[n] for n in numbers] == [e.at for e in events]  # when: the move's own time
    items = items_of(db, job.id)
    assert [(i.status, i.attempts, i.lease_expires_at, i.reason) for i in items] == [
        ("succeeded", 1, None, None)
    ] * 5
    assert all(i.worker == w.id and i.finished_at is not None for i in items)
    done = jobs.get_job(db, job.id, actor=SYSTEM)
    assert (done.status, done.succeeded, done.failed) == ("completed", 5, 0)


def test_a_disputed_order_is_left_to_apply_moves_which_fails_it_with_the_reason(db, customer):
    numbers = new_orders(db, customer, 3)
    with db.write() as conn:
        disputed_id = conn.execute(select(orders.c.id).where(orders.c.number == numbers[1])).scalar_one()
        now = dt.datetime(2026, 11, 1)
        conn.execute(
            insert(disputes).values(
                gateway_dispute_id="dp_plain_1",
                order_id=disputed_id,
                gateway="simulated",
                reason="fraudulent",
                amount=500,
                currency="USD",
                status="needs_response",
                opened_at=now,
                updated_at=now,
            )
        )
    job = jobs.enqueue(db, OPS, "fulfill", order_numbers=numbers)
    assert run(db) == 3
    assert [status_of(db, n) for n in numbers] == ["fulfilled", "paid", "fulfilled"]
    [failure] = jobs.job_failures(db, job.id, actor=SYSTEM)
    assert failure["order"] == numbers[1]
    assert failure["reason"].startswith(f"Order {numbers[1]} is disputed: dp_plain_1")
    assert len(fulfil_events(db, job.id)) == 2


def test_a_worker_that_dies_inside_a_chunk_leaves_nothing_moved_and_the_next_moves_each_order_once(
    db, customer, monkeypatch
):
    numbers = new_orders(db, customer, 4)
    job = jobs.enqueue(db, OPS, "fulfill", order_numbers=numbers)
    dead = make_worker(db)
    chunk = plain_moves._postgres_chunk if db.is_postgres else plain_moves._sqlite_chunk
    name = chunk.__name__

    def dies_before_the_commit(*args, **kwargs):
        chunk(*args, **kwargs)  # every statement of the chunk ran...
        raise SimulatedCrash("killed before the commit")  # ...and the process died

    monkeypatch.setattr(plain_moves, name, dies_before_the_commit)
    with pytest.raises(SimulatedCrash):
        dead.run_once()
    monkeypatch.setattr(plain_moves, name, chunk)

    assert [status_of(db, n) for n in numbers] == ["paid"] * 4
    assert fulfil_events(db, job.id) == []
    assert [(i.status, i.attempts, i.lease_expires_at) for i in items_of(db, job.id)] == [
        ("pending", 0, None)
    ] * 4  # free to claim at once: no lease to wait for
    assert run(db) == 4
    assert [status_of(db, n) for n in numbers] == ["fulfilled"] * 4
    assert len(fulfil_events(db, job.id)) == 4
    assert jobs.get_job(db, job.id, actor=SYSTEM).succeeded == 4


def test_an_order_moved_by_an_earlier_attempt_is_found_in_its_timeline_not_moved_again(db, customer):
    """An item of the old two-transaction record (moved, then the worker died before
    recording it) is claimed again: it is no longer paid, so the timeline decides."""
    numbers = new_orders(db, customer, 2)
    job = jobs.enqueue(db, OPS, "fulfill", order_numbers=numbers)
    from orders_core.lifecycle import apply_moves

    with db.read() as conn:
        first_id = conn.execute(select(orders.c.id).where(orders.c.number == numbers[0])).scalar_one()
    apply_moves(db, OPS, Action.FULFILL, [first_id], job_id=job.id, bulk=True)
    with db.write() as conn:  # claimed once before, as the dead worker had
        conn.execute(job_items.update().where(job_items.c.job_id == job.id).values(attempts=1))
    assert run(db) == 2
    done = jobs.get_job(db, job.id, actor=SYSTEM)
    assert (done.succeeded, done.failed) == (2, 0)
    with db.read() as conn:
        per_order = dict(
            conn.execute(
                select(order_events.c.order_id, func.count())
                .where(order_events.c.job_id == job.id)
                .group_by(order_events.c.order_id)
            ).all()
        )
    assert sorted(per_order.values()) == [1, 1]


def test_chunks_in_flight_at_once_share_a_job_without_claiming_an_order_twice(db, customer):
    numbers = new_orders(db, customer, 7)
    job = jobs.enqueue(db, OPS, "fulfill", order_numbers=numbers)
    w = make_worker(db, job_chunk_size=2, job_move_concurrency=3)
    assert w.plain_chunks.concurrency == (3 if db.is_postgres else 1)  # SQLite has one writer
    assert w.run_once() == 7
    w.close()
    assert [status_of(db, n) for n in numbers] == ["fulfilled"] * 7
    assert sorted(e.order_id for e in fulfil_events(db, job.id)) == sorted(
        i.order_id for i in items_of(db, job.id)
    )
    assert [i.attempts for i in items_of(db, job.id)] == [1] * 7
    assert jobs.get_job(db, job.id, actor=SYSTEM).succeeded == 7
