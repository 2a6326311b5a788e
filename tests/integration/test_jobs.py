"""Bulk jobs: asking (preflight, enqueue), running them in workers (orders_core.job_engine),
canceling and retrying them, the CLI commands; on SQLite and PostgreSQL.

The workers here run in the test's own process (Worker.run_once); real worker
processes, SIGKILL and several workers sharing a job are in test_worker_processes.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, insert, select, update

from orders_core import cli, job_engine, jobs, lifecycle
from orders_core.checkout import place_order
from orders_core.config import load_settings
from orders_core.customers import CustomerAccount
from orders_core.errors import GatewayUnavailable, NotFound, PermissionDenied, ValidationError
from orders_core.job_engine import moves
from orders_core.payments import Gateways
from orders_core.queries import OrderFilters, order_detail
from orders_core.schema import customers as customers_table
from orders_core.schema import (
    job_items,
    order_events,
    orders,
    products,
    refunds,
    sim_charges,
    sim_refunds,
    skus,
)
from orders_core.schema import jobs as jobs_table
from orders_core.staff import SYSTEM, Actor, Role
from pages.jobs_page import failures_csv
from tests.integration.conftest import row_counts
from tests.support.fakes import CrashingGateway, FlakyGateway, SimulatedCrash
from tests.support.spreadsheet_cells import HOSTILE_TEXTS, escaped
from tests.support.staff_accounts import insert_demo_staff

OPS = Actor("ops@ordersdesk.test", Role.OPS)
SUPPORT = Actor("support@ordersdesk.test", Role.SUPPORT)
ANALYST = Actor("analyst@ordersdesk.test", Role.ANALYST)
# For tests whose subject does not depend on the database engine: SQLite only.
sqlite_only = pytest.mark.parametrize("database_url", [pytest.param("sqlite", id="sqlite")], indirect=True)


# -- helpers ---------------------------------------------------------------------------------
def _shopper(db) -> CustomerAccount:
    """A customer row made directly (sign-up's password hashing is slow and not the
    subject here)."""
    with db.write() as conn:
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


@pytest.fixture
def customer(catalog):
    return _shopper(catalog)


def new_orders(db, customer, n, *, sku="PASS-USD", token="tok_visa") -> list[str]:
    return [place_order(db, customer, items=[(sku, 1)], token=token).number for _ in range(n)]


def make_worker(db, *, gateways=None, retry_budget_seconds=None, **settings) -> job_engine.Worker:
    base = dict(refund_concurrency=1)
    base.update(settings)
    return job_engine.Worker(
        db,
        gateways=gateways,
        retry_budget_seconds=retry_budget_seconds,
        settings=dataclasses.replace(load_settings(), **base),
    )


def run(db, **kwargs) -> int:
    w = make_worker(db, **kwargs)
    try:
        return w.run_once()
    finally:
        w.close()


def status_of(db, number) -> str:
    return order_detail(db, number, actor=SYSTEM).status


def ledger_refunds(db, number) -> list[int]:
    """What the simulated gateway's own books paid back for the order."""
    with db.read() as conn:
        return [
            r.amount
            for r in conn.execute(
                select(sim_refunds.c.amount)
                .join(sim_charges, sim_charges.c.id == sim_refunds.c.charge_id)
                .where(sim_charges.c.reference == number)
            )
        ]


def items_of(db, job_id) -> list:
    with db.read() as conn:
        return conn.execute(
            select(job_items).where(job_items.c.job_id == job_id).order_by(job_items.c.seq)
        ).all()


# -- asking ----------------------------------------------------------------------------------
def test_asking_returns_a_queued_job_at_once_and_moves_nothing_yet(db, customer):
    numbers = new_orders(db, customer, 3)
    job = jobs.enqueue(
        db,
        OPS,
        "fulfill",
        order_numbers=numbers + [numbers[0].lower()],
        selection_label="Paid tab, 3 selected",
    )
    assert (job.action, job.status, job.actor) == ("fulfill", "queued", OPS.email)
    assert (job.total, job.succeeded, job.failed, job.pending) == (3, 0, 0, 3)
    assert job.selection == "Paid tab, 3 selected (1 duplicate counted once)"
    assert job.progress == 0.0 and not job.finished and job.started_at is None
    assert [status_of(db, n) for n in numbers] == ["paid"] * 3
    assert [(i.order_number, i.status, i.seq) for i in items_of(db, job.id)] == [
        (numbers[0], "pending", 1),
        (numbers[1], "pending", 2),
        (numbers[2], "pending", 3),
    ]
    assert jobs.get_job(db, job.id, actor=SYSTEM) == job  # re-read from the database, the same


def test_a_fulfill_job_moves_paid_orders_and_fails_the_others_with_reasons(db, customer):
    paid = new_orders(db, customer, 3)
    [declined] = [o for o in _declined_order(db, customer)]
    fulfilled = new_orders(db, customer, 1)[0]
    lifecycle.fulfill_order(db, OPS, fulfilled)
    job = jobs.enqueue(db, OPS, "fulfill", order_numbers=[fulfilled, *paid, declined])

    assert run(db) == 5
    job = jobs.get_job(db, job.id, actor=SYSTEM)
    assert (job.status, job.succeeded, job.failed, job.pending) == ("completed_with_failures", 3, 2, 0)
    assert job.finished and job.progress == 1.0 and job.started_at and job.finished_at
    assert [status_of(db, n) for n in paid] == ["fulfilled"] * 3
    assert jobs.job_failures(db, job.id, actor=SYSTEM) == [
        {
            "order": fulfilled,
            "reason": f"Order {fulfilled} is Fulfilled; Fulfill applies to Paid orders only",
        },
        {"order": declined, "reason": f"Order {declined} is Created; Fulfill applies to Paid orders only"},
    ]
    with db.read() as conn:
        moves = conn.execute(
            select(order_events.c.order_id, order_events.c.actor, order_events.c.note).where(
                order_events.c.job_id == job.id
            )
        ).all()
    assert len(moves) == 3 and {m.actor for m in moves} == {OPS.email}
    assert all(f"job #{job.id}" in m.note for m in moves)


def _declined_order(db, customer) -> list[str]:
    from orders_core.errors import CardDeclined

    with pytest.raises(CardDeclined):
        place_order(db, customer, items=[("PASS-USD", 1)], token="tok_chargeDeclined")
    with db.read() as conn:
        return [conn.execute(select(orders.c.number).order_by(orders.c.id.desc())).scalar()]


def test_the_selection_is_frozen_when_the_job_is_asked_for(db, customer):
    before = new_orders(db, customer, 2)
    job = jobs.enqueue(db, OPS, "fulfill", filters=OrderFilters.parse(status="paid"))
    later = new_orders(db, customer, 1)[0]
    assert job.total == 2 and job.selection == "Orders matching: status paid"
    run(db)
    assert [status_of(db, n) for n in before] == ["fulfilled", "fulfilled"]
    assert status_of(db, later) == "paid"
    assert jobs.get_job(db, job.id, actor=SYSTEM).status == "completed"


def test_an_empty_selection_unknown_numbers_and_missing_permissions_are_refused(db, customer):
    number = new_orders(db, customer, 1)[0]
    before = row_counts(db)
    with pytest.raises(ValidationError, match="^Select at least one order"):
        jobs.enqueue(db, OPS, "fulfill", order_numbers=[])
    with pytest.raises(ValidationError, match="^Select at least one order"):
        jobs.enqueue(db, OPS, "fulfill", order_numbers=[" ", ""])
    with pytest.raises(
        ValidationError, match=r"^Select at least one order: no orders match \(status returned\)"
    ):
        jobs.enqueue(db, OPS, "return", filters=OrderFilters.parse(status="returned"))
    with pytest.raises(NotFound, match="No such orders: 'nonsense', ORD-999999. Nothing was queued."):
        jobs.enqueue(db, OPS, "fulfill", order_numbers=[number, "ORD-999999", "nonsense"])
    with pytest.raises(PermissionDenied, match="not allowed to fulfill orders"):
        jobs.enqueue(db, SUPPORT, "fulfill", order_numbers=[number])
    with pytest.raises(PermissionDenied, match="not allowed to cancel orders"):
        jobs.enqueue(db, ANALYST, "cancel", order_numbers=[number])
    with pytest.raises(ValidationError, match="Unknown bulk action 'pay'"):
        jobs.enqueue(db, SYSTEM, "pay", order_numbers=[number])
    assert row_counts(db) == before
    assert jobs.enqueue(db, ANALYST, "export", order_numbers=[number]).total == 1


def test_preflight_counts_eligible_orders_groups_the_others_and_sums_refunds(db, customer):
    usd = new_orders(db, customer, 3)  # $10.00... each PASS-USD is $5.00
    eur = new_orders(db, customer, 2, sku="PASS-EUR")
    lifecycle.fulfill_order(db, OPS, usd[0])
    lifecycle.cancel_order(db, OPS, usd[1])
    created = _declined_order(db, customer)[0]

    check = jobs.preflight(db, OPS, "cancel", order_numbers=[*usd, *eur, created, usd[2], "ORD-777777"])
    assert (check.action, check.requested, check.duplicates, check.eligible) == ("cancel", 7, 1, 3)
    assert check.ineligible == {
        "Canceled — Cancel applies to Paid orders only": 1,
        "Created — Cancel applies to Paid orders only": 1,
        "Fulfilled — Cancel applies to Paid orders only": 1,
        "No such order number": 1,
    }
    assert check.refund_totals == {"eur": 900, "usd": 500}
    assert check.unknown == ["ORD-777777"]
    summary = check.summary()
    assert summary.startswith("Cancel: 3 of 7 selected orders are eligible; 4 are not (")
    assert "refunding €9.00 and $5.00" in summary and "1 duplicate order number counted once" in summary

    by_filter = jobs.preflight(db, OPS, "return", filters=OrderFilters.parse(status="all"))
    assert (by_filter.requested, by_filter.eligible, by_filter.refund_totals) == (6, 1, {"usd": 500})
    assert by_filter.ineligible["Paid — Return applies to Fulfilled orders only"] == 3
    export = jobs.preflight(db, ANALYST, "export", filters=OrderFilters.parse(status="all"))
    assert (export.eligible, export.ineligible, export.refund_totals) == (6, {}, {})
    assert export.summary() == "Export: all 6 selected orders are eligible."
    empty = jobs.preflight(db, OPS, "fulfill", filters=OrderFilters.parse(status="returned"))
    assert empty.requested == 0 and empty.summary().startswith("Select at least one order")
    with pytest.raises(PermissionDenied):
        jobs.preflight(db, ANALYST, "cancel", filters=OrderFilters.parse(status="paid"))


# -- running: refunds, changes by others, gateway failures -------------------------------------
def test_a_cancel_job_refunds_each_order_once_and_skips_one_someone_else_fulfilled(db, customer):
    numbers = new_orders(db, customer, 4)
    job = jobs.enqueue(
        db, SUPPORT, "cancel", filters=OrderFilters.parse(status="paid"), reason="Out of stock"
    )
    lifecycle.fulfill_order(db, OPS, numbers[1])  # meanwhile, by someone else

    run(db, refund_concurrency=3)
    job = jobs.get_job(db, job.id, actor=SYSTEM)
    assert (job.status, job.succeeded, job.failed) == ("completed_with_failures", 3, 1)
    assert jobs.job_failures(db, job.id, actor=SYSTEM) == [
        {
            "order": numbers[1],
            "reason": f"Order {numbers[1]} is Fulfilled; Cancel applies to Paid orders only",
        }
    ]
    for number in (numbers[0], numbers[2], numbers[3]):
        order = order_detail(db, number, actor=SYSTEM)
        assert order.status == "canceled" and order.refunded_amount == 500
        assert ledger_refunds(db, number) == [500]
        assert order.events[-1].job_id == job.id
        assert order.events[-1].note.startswith("Out of stock\nRefunded $5.00")
    assert status_of(db, numbers[1]) == "fulfilled" and ledger_refunds(db, numbers[1]) == []


def test_transient_gateway_failures_are_retried_with_backoff_and_refund_once(db, customer):
    numbers = new_orders(db, customer, 3)
    flaky = FlakyGateway(Gateways(db).default, "refund", GatewayUnavailable("connection reset"), failures=2)
    job = jobs.enqueue(db, OPS, "cancel", order_numbers=numbers)
    run(db, gateways=Gateways(db).use(flaky))
    assert jobs.get_job(db, job.id, actor=SYSTEM).status == "completed"
    assert flaky.calls.count("refund") == 5  # two outages, then each order once
    assert [ledger_refunds(db, n) for n in numbers] == [[500]] * 3


def test_a_permanent_refund_failure_fails_that_item_and_leaves_the_order_paid(db, customer):
    good = new_orders(db, customer, 1)[0]
    refused = new_orders(db, customer, 1, token="tok_refundFail")[0]
    job = jobs.enqueue(db, OPS, "cancel", order_numbers=[good, refused])
    run(db)
    job = jobs.get_job(db, job.id, actor=SYSTEM)
    assert (job.status, job.succeeded, job.failed) == ("completed_with_failures", 1, 1)
    [failure] = jobs.job_failures(db, job.id, actor=SYSTEM)
    assert failure["order"] == refused
    assert failure["reason"].startswith(
        f"Refund of $5.00 for order {refused} failed: The card issuer refused"
    )
    assert "(refund_failed)" in failure["reason"] and "the order stays Paid" in failure["reason"]
    assert status_of(db, refused) == "paid" and ledger_refunds(db, refused) == []
    assert status_of(db, good) == "canceled"


def test_every_cell_start_a_spreadsheet_acts_on_is_escaped_in_the_failures_csv(db, customer):
    """The Jobs page's failures CSV; a reason quotes what it was given, so it is text
    from outside (here written straight into the failed items)."""
    numbers = new_orders(db, customer, len(HOSTILE_TEXTS))
    job = jobs.enqueue(db, OPS, "cancel", order_numbers=numbers)
    with db.write() as conn:
        for number, text in zip(numbers, HOSTILE_TEXTS):
            conn.execute(
                update(job_items)
                .where(job_items.c.job_id == job.id, job_items.c.order_number == number)
                .values(status="failed", reason=text)
            )
    written = pd.read_csv(io.BytesIO(failures_csv(db, OPS, job.id)()), keep_default_na=False)
    assert list(written["order"]) == numbers
    assert list(written["reason"]) == [escaped(t) for t in HOSTILE_TEXTS]


def test_an_outage_longer_than_the_retry_budget_fails_the_items_and_retry_failed_finishes_them(db, customer):
    numbers = new_orders(db, customer, 3)
    down = FlakyGateway(
        Gateways(db).default, "refund", GatewayUnavailable("503 from the gateway"), failures=10_000
    )
    first = jobs.enqueue(db, OPS, "cancel", order_numbers=numbers)
    run(db, gateways=Gateways(db).use(down), retry_budget_seconds=0.3)
    first = jobs.get_job(db, first.id, actor=SYSTEM)
    assert (first.status, first.failed) == ("failed", 3)
    assert all(
        "gateway is unavailable" in f["reason"] and "Try again" in f["reason"]
        for f in jobs.job_failures(db, first.id, actor=SYSTEM)
    )
    assert [status_of(db, n) for n in numbers] == ["paid"] * 3

    with pytest.raises(PermissionDenied):
        jobs.retry_failed(db, SUPPORT, first.id)
    retry = jobs.retry_failed(db, OPS, first.id)
    assert (retry.retry_of, retry.total, retry.status, retry.action) == (first.id, 3, "queued", "cancel")
    assert retry.selection.startswith(f"The 3 failed orders of job #{first.id}")
    run(db)
    retry = jobs.get_job(db, retry.id, actor=SYSTEM)
    assert (retry.status, retry.succeeded) == ("completed", 3)
    assert [ledger_refunds(db, n) for n in numbers] == [[500]] * 3
    with pytest.raises(ValidationError, match="has no failed orders to retry"):
        jobs.retry_failed(db, OPS, retry.id)


@sqlite_only
def test_a_return_job_refunds_fulfilled_orders(db, customer):
    numbers = new_orders(db, customer, 2)
    lifecycle.fulfill_order(db, OPS, numbers[0])
    job = jobs.enqueue(db, SUPPORT, "return", order_numbers=numbers)
    run(db)
    assert jobs.get_job(db, job.id, actor=SYSTEM).succeeded == 1
    assert status_of(db, numbers[0]) == "returned" and ledger_refunds(db, numbers[0]) == [500]
    assert (
        jobs.job_failures(db, job.id, actor=SYSTEM)[0]["reason"]
        == f"Order {numbers[1]} is Paid; Return applies to Fulfilled orders only"
    )


@sqlite_only
def test_under_a_rate_limit_refunds_are_claimed_in_batches_that_fit_their_lease(db, customer, monkeypatch):
    numbers = new_orders(db, customer, 12)
    batches = []
    real = moves.apply_moves

    def recording(db_, actor, action, ids, **kwargs):
        batches.append(len(ids))
        return real(db_, actor, action, ids, **kwargs)

    monkeypatch.setattr(moves, "apply_moves", recording)
    job = jobs.enqueue(db, OPS, "cancel", order_numbers=numbers)
    # 60 requests/s and a 1 s refund lease: at most 10 orders per batch (3 requests each).
    w = make_worker(db, gateway_requests_per_second=60.0, payment_lease_seconds=1, job_chunk_size=25)
    assert w.mover.refund_batch == 10
    assert w.run_once() == 12
    w.close()
    assert batches == [10, 2]
    assert jobs.get_job(db, job.id, actor=SYSTEM).status == "completed"
    assert [ledger_refunds(db, n) for n in numbers] == [[500]] * 12


# -- canceling --------------------------------------------------------------------------------
@sqlite_only
def test_canceling_a_queued_job_stops_it_at_once(db, customer):
    numbers = new_orders(db, customer, 2)
    job = jobs.enqueue(db, OPS, "cancel", order_numbers=numbers)
    with pytest.raises(PermissionDenied):
        jobs.cancel_job(db, SUPPORT, job.id)
    job = jobs.cancel_job(db, OPS, job.id)
    assert (job.status, job.cancel_requested, job.pending) == ("canceled", True, 2)
    assert job.finished and job.finished_at is not None
    assert run(db) == 0
    assert [status_of(db, n) for n in numbers] == ["paid", "paid"]
    with pytest.raises(ValidationError, match="already canceled"):
        jobs.cancel_job(db, OPS, job.id)


def test_a_cancel_that_comes_after_the_job_finished_says_so_and_changes_nothing(db, customer, monkeypatch):
    """The page read the job as running; it finished before the cancel was written."""
    numbers = new_orders(db, customer, 3)
    job = jobs.enqueue(db, OPS, "cancel", order_numbers=numbers)
    stale = jobs.read_job(db, job.id)  # queued, as the page last saw it
    assert run(db) == 3
    reads = iter([stale])
    real_read_job = jobs.read_job
    monkeypatch.setattr(jobs, "read_job", lambda d, i: next(reads, None) or real_read_job(d, i))
    with pytest.raises(
        ValidationError,
        match=rf"Job #{job.id} had already finished .*3 succeeded.*"
        r"nothing was canceled",
    ):
        jobs.cancel_job(db, OPS, job.id)
    done = real_read_job(db, job.id)
    assert (done.status, done.cancel_requested, done.succeeded) == ("completed", False, 3)


class CancelingGateway:
    """The real gateway; the job is canceled by staff while its first refund runs."""

    def __init__(self, db, inner):
        self.db, self.inner, self.job_id, self.refunds = db, inner, None, 0
        self.name = inner.name

    def __getattr__(self, method):
        return getattr(self.inner, method)

    def refund(self, *args, **kwargs):
        self.refunds += 1
        if self.refunds == 1:
            jobs.cancel_job(self.db, OPS, self.job_id)
        return self.inner.refund(*args, **kwargs)


def test_canceling_a_running_job_stops_it_at_the_next_chunk_and_keeps_finished_items(db, customer):
    numbers = new_orders(db, customer, 9)
    gateway = CancelingGateway(db, Gateways(db).default)
    job = jobs.enqueue(db, OPS, "cancel", order_numbers=numbers)
    gateway.job_id = job.id
    run(db, gateways=Gateways(db).use(gateway), job_chunk_size=3)
    job = jobs.get_job(db, job.id, actor=SYSTEM)
    assert (job.status, job.succeeded, job.failed, job.pending) == ("canceled", 3, 0, 6)
    assert [status_of(db, n) for n in numbers] == ["canceled"] * 3 + ["paid"] * 6
    assert gateway.refunds == 3


# -- crashes and leases ------------------------------------------------------------------------
def expire_leases(db) -> None:
    """As if the dead worker's leases (job items, refunds) had run out."""
    past = dt.datetime(2000, 1, 1)
    with db.write() as conn:
        conn.execute(
            update(job_items).where(job_items.c.lease_expires_at.is_not(None)).values(lease_expires_at=past)
        )
        conn.execute(update(refunds).where(refunds.c.locked_until.is_not(None)).values(locked_until=past))


def test_a_worker_that_dies_during_a_refund_is_taken_over_and_nobody_is_refunded_twice(db, customer):
    numbers = new_orders(db, customer, 5)
    job = jobs.enqueue(db, OPS, "cancel", order_numbers=numbers)
    crashing = CrashingGateway(Gateways(db).default, crash_after="refund")  # the 1st refund
    dead = make_worker(db, gateways=Gateways(db).use(crashing), job_chunk_size=3)
    with pytest.raises(SimulatedCrash):
        dead.run_once()
    dead.close()
    assert jobs.get_job(db, job.id, actor=SYSTEM).status == "running"
    assert make_worker(db).run_once() == 2  # only the items nobody holds
    expire_leases(db)

    assert run(db) == 3
    job = jobs.get_job(db, job.id, actor=SYSTEM)
    assert (job.status, job.succeeded, job.failed, job.pending) == ("completed", 5, 0, 0)
    assert [ledger_refunds(db, n) for n in numbers] == [[500]] * 5
    with db.read() as conn:
        assert conn.execute(select(func.count()).select_from(refunds)).scalar_one() == 5
    assert [i.attempts for i in items_of(db, job.id)] == [2, 2, 2, 1, 1]


def test_a_crash_between_the_moves_and_their_record_is_resumed_from_the_timeline(db, customer, monkeypatch):
    numbers = new_orders(db, customer, 4)
    job = jobs.enqueue(db, OPS, "cancel", order_numbers=numbers)

    def crash(*args, **kwargs):
        raise SimulatedCrash("died before recording the chunk")

    dead = make_worker(db)
    monkeypatch.setattr(dead, "_record_chunk", crash)
    with pytest.raises(SimulatedCrash):
        dead.run_once()
    dead.close()
    assert [status_of(db, n) for n in numbers] == ["canceled"] * 4  # moved, not recorded
    assert jobs.get_job(db, job.id, actor=SYSTEM).pending == 4
    expire_leases(db)

    run(db)
    job = jobs.get_job(db, job.id, actor=SYSTEM)
    assert (job.status, job.succeeded) == ("completed", 4)
    assert [ledger_refunds(db, n) for n in numbers] == [[500]] * 4
    with db.read() as conn:
        assert conn.execute(select(func.count()).select_from(refunds)).scalar_one() == 4


@sqlite_only
def test_an_item_claimed_too_often_without_being_recorded_fails_instead_of_looping(db, customer):
    numbers = new_orders(db, customer, 2)
    job = jobs.enqueue(db, OPS, "fulfill", order_numbers=numbers)
    with db.write() as conn:
        conn.execute(
            update(job_items)
            .where(job_items.c.order_number == numbers[0])
            .values(attempts=job_engine.MAX_ITEM_ATTEMPTS, reason="Attempt failed: OperationalError: boom")
        )
    run(db)
    [failure] = jobs.job_failures(db, job.id, actor=SYSTEM)
    assert failure["order"] == numbers[0]
    assert failure["reason"] == (
        f"Gave up on order {numbers[0]} after {job_engine.MAX_ITEM_ATTEMPTS} "
        f"attempts; the last attempt failed with Attempt failed: "
        f"OperationalError: boom."
    )
    assert status_of(db, numbers[0]) == "paid" and status_of(db, numbers[1]) == "fulfilled"


@sqlite_only
def test_a_worker_told_to_stop_finishes_its_chunk_and_releases_the_rest(db, customer):
    numbers = new_orders(db, customer, 4)
    job = jobs.enqueue(db, OPS, "fulfill", order_numbers=numbers)
    stop = threading.Event()
    w = make_worker(db, job_chunk_size=2)
    original = w.plain_chunks.run  # a Fulfill's chunk: set-based (plain_moves.py)

    def complete_then_stop(*args, **kwargs):
        stop.set()  # SIGTERM arrives during the first chunk
        return original(*args, **kwargs)

    w.plain_chunks.run = complete_then_stop
    assert w.run_once(stop) == 2
    w.close()
    job = jobs.get_job(db, job.id, actor=SYSTEM)
    assert (job.status, job.succeeded, job.pending, job.lease_owner) == ("running", 2, 2, None)
    assert all(i.lease_expires_at is None for i in items_of(db, job.id))
    assert run(db) == 2  # another worker takes the rest at once, no lease to wait for
    assert jobs.get_job(db, job.id, actor=SYSTEM).status == "completed"


# -- running elsewhere: --wait, the embedded worker, exports -----------------------------------
@sqlite_only
def test_run_job_here_finishes_the_job_with_no_other_worker(db, customer):
    numbers = new_orders(db, customer, 3)
    job = jobs.enqueue(db, OPS, "fulfill", order_numbers=numbers)
    done = job_engine.run_job_here(db, job.id)
    assert (done.status, done.succeeded, done.finished) == ("completed", 3, True)


def test_the_embedded_worker_starts_once_per_process_and_runs_queued_jobs(
    sqlite_db, sqlite_database_url, customer_on_sqlite, monkeypatch
):
    monkeypatch.setenv("ORDERS_EMBEDDED_WORKER", "0")
    job_engine.ensure_embedded_worker(sqlite_database_url)
    assert not _embedded_threads()
    monkeypatch.setenv("ORDERS_EMBEDDED_WORKER", "1")
    try:
        for _ in range(3):
            job_engine.ensure_embedded_worker(sqlite_database_url)
        assert len(_embedded_threads()) == 1
        numbers = new_orders(sqlite_db, customer_on_sqlite, 2)
        job = jobs.enqueue(sqlite_db, OPS, "fulfill", order_numbers=numbers)
        deadline = time.monotonic() + 20
        while not jobs.get_job(sqlite_db, job.id, actor=SYSTEM).finished:
            assert time.monotonic() < deadline, "the embedded worker did not run the job in 20 s"
            time.sleep(0.05)
        assert jobs.get_job(sqlite_db, job.id, actor=SYSTEM).status == "completed"
    finally:
        job_engine.stop_embedded_worker()
    assert not _embedded_threads()


def _embedded_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "orders-embedded-worker" and t.is_alive()]


@pytest.fixture
def customer_on_sqlite(sqlite_db):
    with sqlite_db.write() as conn:
        conn.execute(
            insert(products).values(id=1, name="Digital pass", description="", shippable=False, active=True)
        )
        conn.execute(
            insert(skus).values(
                id=2,
                code="PASS-USD",
                name="Day pass",
                product_id=1,
                unit_amount=500,
                currency="usd",
                active=True,
            )
        )
    insert_demo_staff(sqlite_db)
    return _shopper(sqlite_db)


def test_an_export_job_writes_the_file_and_records_it(db, customer, tmp_path, monkeypatch):
    monkeypatch.setenv("ORDERS_DATA_DIR", str(tmp_path))
    numbers = new_orders(db, customer, 3)
    lifecycle.fulfill_order(db, OPS, numbers[0])
    job = jobs.enqueue(db, ANALYST, "export", filters=OrderFilters.parse(status="all"))
    assert run(db) == 3
    job = jobs.get_job(db, job.id, actor=SYSTEM)
    assert (job.status, job.succeeded, job.export_rows) == ("completed", 3, 3)
    path = Path(job.export_path)
    assert path.parent == tmp_path / "exports" and path.name.startswith(f"orders-job-{job.id}-")
    assert path.stat().st_size == job.export_bytes
    assert all(n in path.read_text(encoding="utf-8-sig") for n in numbers)


def test_an_export_held_by_a_worker_that_died_is_taken_over_and_its_file_written_once(
    db, customer, tmp_path, monkeypatch
):
    from orders_core import export

    monkeypatch.setenv("ORDERS_DATA_DIR", str(tmp_path))
    numbers = new_orders(db, customer, 3)
    job = jobs.enqueue(db, ANALYST, "export", filters=OrderFilters.parse(status="all"))
    real_export = export.export_orders

    def die_mid_export(*args, **kwargs):
        raise SimulatedCrash("died while writing the export")

    monkeypatch.setattr(export, "export_orders", die_mid_export)
    dead = make_worker(db)
    with pytest.raises(SimulatedCrash):
        dead.run_once()
    dead.close()  # its heartbeat stops; nobody releases its lease
    held = jobs.get_job(db, job.id, actor=SYSTEM)
    assert (held.status, held.lease_owner, held.pending) == ("running", dead.id, 3)

    monkeypatch.setattr(export, "export_orders", real_export)
    assert run(db) == 0  # the lease still holds: nobody else takes the export
    with db.write() as conn:  # as if the dead worker's lease had run out
        conn.execute(
            update(jobs_table)
            .where(jobs_table.c.id == job.id)
            .values(lease_expires_at=dt.datetime(2000, 1, 1))
        )
    assert run(db) == 3

    job = jobs.get_job(db, job.id, actor=SYSTEM)
    assert (job.status, job.succeeded, job.failed, job.export_rows) == ("completed", 3, 0, 3)
    assert job.lease_owner is None
    [written] = list((tmp_path / "exports").iterdir())
    assert Path(job.export_path) == written
    assert all(n in written.read_text(encoding="utf-8-sig") for n in numbers)
    assert items_of(db, job.id) == []  # a filtered export is frozen as filters + an id bound


# -- reading jobs ---------------------------------------------------------------------------
@sqlite_only
def test_jobs_are_listed_newest_first_and_read_back_as_json(db, customer):
    numbers = new_orders(db, customer, 2)
    first = jobs.enqueue(db, OPS, "fulfill", order_numbers=numbers[:1])
    second = jobs.enqueue(db, OPS, "cancel", order_numbers=numbers)
    assert [j.id for j in jobs.list_jobs(db, actor=SYSTEM)] == [second.id, first.id]
    assert [j.id for j in jobs.list_jobs(db, limit=1, actor=SYSTEM)] == [second.id]
    data = json.loads(json.dumps(second.as_dict()))
    assert data["status"] == "queued" and data["created_at"].endswith("Z") and data["pending"] == 2
    with pytest.raises(NotFound, match="No job #999"):
        jobs.get_job(db, 999, actor=SYSTEM)
    with pytest.raises(NotFound):
        jobs.job_failures(db, 999, actor=SYSTEM)


# -- the command line -------------------------------------------------------------------------
@pytest.fixture
def cli_env(db, database_url, monkeypatch):
    monkeypatch.setenv("ORDERS_DATABASE_URL", database_url)
    return db


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_bulk_wait_jobs_and_job(cli_env, customer, capsys):
    db = cli_env
    numbers = new_orders(db, customer, 3)
    lifecycle.fulfill_order(db, OPS, numbers[0])

    code, out, err = run_cli(
        capsys, "bulk", "fulfill", "--orders", ",".join(numbers + numbers[:1]), "--wait", "--json"
    )
    assert code == 0, err
    job = json.loads(out)
    assert {k: job[k] for k in ("action", "status", "total", "succeeded", "failed", "pending")} == {
        "action": "fulfill",
        "status": "completed_with_failures",
        "total": 3,
        "succeeded": 2,
        "failed": 1,
        "pending": 0,
    }

    code, out, err = run_cli(capsys, "job", str(job["id"]), "--json")
    assert code == 0 and json.loads(out)["failures"] == [
        {
            "order": numbers[0],
            "reason": f"Order {numbers[0]} is Fulfilled; Fulfill applies to Paid orders only",
        }
    ]
    code, out, _ = run_cli(capsys, "jobs", "--json")
    assert code == 0 and [j["id"] for j in json.loads(out)] == [job["id"]]
    code, out, _ = run_cli(capsys, "job", str(job["id"]))
    assert code == 0 and f"Job #{job['id']}  Fulfill  Completed with failures" in out
    assert f"Order {numbers[0]} is Fulfilled" in out
    assert (
        "Retry:     0 of 1 failed order can be retried; 1 cannot: 1 because the order is "
        "Fulfilled now (Fulfill applies to Paid orders only)." in out
    )
    code, out, err = run_cli(capsys, "job", str(job["id"]), "--retry-failed")
    assert code == 1 and out == "" and f"Job #{job['id']}: nothing to retry." in err

    code, out, err = run_cli(capsys, "bulk", "cancel", "--status", "fulfilled", "--actor", "x@y.test")
    assert code == 1 and out == "" and err.startswith("error: No staff account")


def test_cli_bulk_queues_without_waiting_and_a_worker_once_runs_it(cli_env, customer, capsys):
    numbers = new_orders(cli_env, customer, 2)
    code, out, err = run_cli(capsys, "bulk", "cancel", "--status", "paid", "--json")
    assert code == 0, err
    job = json.loads(out)
    assert (job["status"], job["total"], job["selection"]) == ("queued", 2, "Orders matching: status paid")
    code, out, err = run_cli(capsys, "bulk", "cancel", "--status", "paid", "--dry-run", "--json")
    assert code == 0 and json.loads(out)["eligible"] == 2
    code, out, err = run_cli(capsys, "worker", "--once", "--json")
    assert code == 0, err
    assert json.loads(out)["processed"] == 2
    assert jobs.get_job(cli_env, job["id"], actor=SYSTEM).status == "completed"
    assert [status_of(cli_env, n) for n in numbers] == ["canceled", "canceled"]


@sqlite_only
@pytest.mark.parametrize(
    "args,code,message",
    [
        (["bulk", "cancel", "--orders", ""], 1, "error: Select at least one order"),
        (
            ["bulk", "cancel", "--orders", "ORD-424242"],
            1,
            "error: No such order: ORD-424242. Nothing was queued.",
        ),
        (["bulk", "cancel", "--status", "shipped"], 1, "error: Unknown status 'shipped'"),
        (["bulk", "cancel", "--orders", "1", "--status", "paid"], 2, "not allowed with argument"),
        (["bulk", "cancel", "--orders", "1", "--from", "2026-01-01"], 2, "narrow a --status selection"),
        (["bulk", "explode", "--status", "paid"], 2, "invalid choice"),
        (["bulk", "cancel"], 2, "one of the arguments --orders --status is required"),
        (["job", "404"], 1, "error: No job #404."),
        (["job", "abc"], 1, "error: 'abc' is not a job id."),
        (["jobs", "--limit", "0"], 2, "Limit must be between 1 and 1000"),
    ],
)
def test_cli_refusals_and_usage_errors(cli_env, args, code, message, capsys):
    got, out, err = run_cli(capsys, *args)
    assert got == code, (out, err)
    assert message in err and "Traceback" not in err and out == ""
