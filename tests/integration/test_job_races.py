"""A cancel that arrives while a worker is between two of its steps, on SQLite and
PostgreSQL: the cancel wins, and the worker leaves a record that says what happened.

The interruption is a real second actor acting through the real services at one exact
point of the worker's run (tests/support/fakes.InterleavingDatabase): right after the
worker's first read (it has seen the job as claimable) or right after its first write
(it has claimed the chunk)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from sqlalchemy import insert, select

from orders_core import job_engine, jobs, lifecycle
from orders_core.checkout import place_order
from orders_core.config import load_settings
from orders_core.customers import CustomerAccount
from orders_core.payments import Gateways
from orders_core.queries import order_detail
from orders_core.schema import customers as customers_table
from orders_core.schema import job_items
from orders_core.staff import SYSTEM, Actor, Role
from tests.support.fakes import AfterNth, InterleavingDatabase

OPS = Actor("ops@ordersdesk.test", Role.OPS)
SUPPORT = Actor("support@ordersdesk.test", Role.SUPPORT)


@pytest.fixture
def customer(catalog):
    with catalog.write() as conn:  # made directly: sign-up's password hashing is not the subject
        customer_id = conn.execute(
            insert(customers_table).values(
                email="ada@example.test",
                email_key="ada@example.test",
                name="Ada Lovelace",
                password_hash="!",
                created_at=dt.datetime(2026, 1, 1),
            )
        ).inserted_primary_key[0]
    return CustomerAccount(customer_id, "ada@example.test", "Ada Lovelace")


def paid_orders(db, customer, n: int) -> list[str]:
    return [place_order(db, customer, items=[("PASS-USD", 1)], token="tok_visa").number for _ in range(n)]


def run_worker(db, gateways) -> int:
    runner = job_engine.Worker(
        db, gateways=gateways, settings=dataclasses.replace(load_settings(), refund_concurrency=1)
    )
    try:
        return runner.run_once()
    finally:
        runner.close()


def test_a_job_canceled_between_the_workers_read_and_its_claim_is_never_claimed(db, customer):
    numbers = paid_orders(db, customer, 3)
    job = jobs.enqueue(db, OPS, "fulfill", order_numbers=numbers)
    cancel = AfterNth("read", 1, lambda: jobs.cancel_job(db, OPS, job.id))

    processed = run_worker(InterleavingDatabase(db, cancel), Gateways(db))

    assert cancel.done and processed == 0
    finished = jobs.get_job(db, job.id, actor=SYSTEM)
    assert (finished.status, finished.succeeded, finished.failed) == ("canceled", 0, 0)
    with db.read() as conn:  # the claim rolled back whole: no item stamped by the worker
        items = conn.execute(
            select(job_items.c.status, job_items.c.worker, job_items.c.attempts).where(
                job_items.c.job_id == job.id
            )
        ).all()
    assert [tuple(item) for item in items] == [("pending", None, 0)] * 3
    assert [order_detail(db, n, actor=SYSTEM).status for n in numbers] == ["paid"] * 3


def test_an_order_canceled_after_the_worker_claimed_it_fails_that_item_with_the_reason(db, customer):
    numbers = paid_orders(db, customer, 3)
    job = jobs.enqueue(db, OPS, "fulfill", order_numbers=numbers)
    cancel = AfterNth(
        "write", 1, lambda: lifecycle.cancel_order(db, SUPPORT, numbers[1], reason="Customer called")
    )

    run_worker(InterleavingDatabase(db, cancel), Gateways(db))

    assert cancel.done
    finished = jobs.get_job(db, job.id, actor=SYSTEM)
    assert (finished.status, finished.succeeded, finished.failed) == ("completed_with_failures", 2, 1)
    assert jobs.job_failures(db, job.id, actor=SYSTEM) == [
        {
            "order": numbers[1],
            "reason": f"Order {numbers[1]} is Canceled; Fulfill applies to Paid orders only",
        }
    ]
    canceled = order_detail(db, numbers[1], actor=SYSTEM)
    assert (canceled.status, canceled.refunded_amount) == ("canceled", 500)
    assert [e.kind for e in canceled.events] == ["create", "pay", "cancel"]
    others = [order_detail(db, n, actor=SYSTEM).status for n in (numbers[0], numbers[2])]
    assert others == ["fulfilled"] * 2
