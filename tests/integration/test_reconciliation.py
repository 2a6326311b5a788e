"""Reconciliation against the simulated gateway's ledger, on SQLite and PostgreSQL:
each kind of mismatch seeded on purpose is found, and clean books give an empty report.

The seeds change one side only, the way the world does: the gateway's ledger is
written through the gateway (a refund made "outside Orders Desk") or its own tables
(a charge the gateway no longer holds as succeeded); our books through SQL."""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid

import pytest
from sqlalchemy import select, update

from orders_core import lifecycle
from orders_core.checkout import place_order
from orders_core.clock import utcnow
from orders_core.errors import CardDeclined
from orders_core.payments.simulated import SimulatedGateway
from orders_core.reconciliation import MismatchKind, Period, reconcile, report_csv
from orders_core.schema import orders, payments, refunds, sim_charges, sim_refunds
from orders_core.staff import Actor, Role

SUPPORT = Actor("support@ordersdesk.test", Role.SUPPORT)


def today() -> Period:
    day = utcnow().date()
    return Period(day, day)


def buy(db, customer, sku="PASS-USD", qty=1, token="tok_visa") -> str:
    return place_order(db, customer, items=[(sku, qty)], token=token).number


def gateway_payment_id(db, number: str) -> str:
    with db.read() as conn:
        return conn.execute(
            select(payments.c.gateway_payment_id)
            .join(orders, orders.c.id == payments.c.order_id)
            .where(orders.c.number == number, payments.c.status == "succeeded")
        ).scalar_one()


def found(report) -> set[tuple[str, str | None]]:
    return {(m.kind.value, m.order_number) for m in report.mismatches}


@pytest.fixture
def clean_books(db, customer):
    """Paid orders in two currencies, a canceled (refunded) one, a declined one."""
    paid = [buy(db, customer), buy(db, customer, "PASS-EUR", 2), buy(db, customer, "PASS-JPY")]
    canceled = buy(db, customer, "PASS-USD", 4)
    lifecycle.cancel_order(db, SUPPORT, canceled, reason="customer asked")
    with pytest.raises(CardDeclined):
        buy(db, customer, token="tok_chargeDeclined")
    return {"paid": paid, "canceled": canceled}


def test_clean_books_give_an_empty_report(db, clean_books):
    report = reconcile(db, SimulatedGateway(db), today())

    assert report.clean, [m.as_dict() for m in report.mismatches]
    assert report.counts == {kind.value: 0 for kind in MismatchKind}
    assert report.payments_checked == 5  # the declined attempt is ours too
    assert report.gateway_charges == 5
    assert report.refunds_checked == report.gateway_refunds == 1
    assert report.orders_checked == 5


def test_a_period_with_nothing_in_it_is_clean_and_checks_nothing(db, clean_books):
    long_ago = Period(dt.date(2020, 1, 1), dt.date(2020, 1, 31))

    report = reconcile(db, SimulatedGateway(db), long_ago)

    assert report.clean
    assert (report.payments_checked, report.gateway_charges, report.orders_checked) == (0, 0, 0)


def test_each_kind_of_mismatch_seeded_on_purpose_is_found(db, customer, clean_books):
    gateway = SimulatedGateway(db)
    # 1. A charge at the gateway that no order holds: made straight at the gateway.
    stray = gateway.create_payment(
        amount=4200, currency="usd", reference="not-an-order", idempotency_key=str(uuid.uuid4())
    )
    gateway.confirm_payment(stray.payment_id, token="tok_visa", idempotency_key=str(uuid.uuid4()))
    # 1b. The gateway charged, but the confirm's answer was lost: we hold the order Created.
    lost = buy(db, customer)
    with db.write() as conn:
        conn.execute(
            update(payments)
            .where(payments.c.gateway_payment_id == gateway_payment_id(db, lost))
            .values(status="failed")
        )
        conn.execute(update(orders).where(orders.c.number == lost).values(status="created", paid_at=None))
    # 2. A payment we hold as succeeded that the gateway does not.
    unpaid_at_gateway = buy(db, customer)
    with db.write() as conn:
        conn.execute(
            update(sim_charges)
            .where(sim_charges.c.id == gateway_payment_id(db, unpaid_at_gateway))
            .values(status="requires_payment_method")
        )
    # 3a. A refund the gateway made for less than we hold.
    short_refund = buy(db, customer, "PASS-USD", 4)
    lifecycle.cancel_order(db, SUPPORT, short_refund)
    with db.write() as conn:
        conn.execute(
            update(sim_refunds)
            .where(sim_refunds.c.charge_id == gateway_payment_id(db, short_refund))
            .values(amount=999)
        )
    # 3b. A refund we hold as failed (and the order as not refunded) that the gateway made.
    failed_here = buy(db, customer)
    lifecycle.cancel_order(db, SUPPORT, failed_here)
    with db.write() as conn:
        order_id = conn.execute(select(orders.c.id).where(orders.c.number == failed_here)).scalar_one()
        conn.execute(update(refunds).where(refunds.c.order_id == order_id).values(status="failed"))
        conn.execute(update(orders).where(orders.c.id == order_id).values(refunded_amount=0))
    # 4. A refund at the gateway unknown to us: made "outside Orders Desk" (the ledger only).
    refunded_elsewhere = buy(db, customer, "PASS-USD", 3)
    outside = gateway.refund(
        gateway_payment_id(db, refunded_elsewhere), amount=500, idempotency_key="dashboard-1", reference=""
    )
    # 5. An order whose refunded amount is not the sum of its refunds.
    miscounted = clean_books["paid"][0]
    with db.write() as conn:
        conn.execute(update(orders).where(orders.c.number == miscounted).values(refunded_amount=123))

    report = reconcile(db, gateway, today())

    assert found(report) == {
        ("charge_without_order", None),
        ("charge_without_order", lost),
        ("payment_not_at_gateway", unpaid_at_gateway),
        ("refund_differs", short_refund),
        ("refund_differs", failed_here),
        ("refund_unknown", refunded_elsewhere),
        ("refunded_amount_differs", miscounted),
    }
    assert report.counts == {
        "charge_without_order": 2,
        "payment_not_at_gateway": 1,
        "refund_differs": 2,
        "refund_unknown": 1,
        "refunded_amount_differs": 1,
    }
    rows = {(m.kind.value, m.order_number): m for m in report.mismatches}
    stray_row = rows[("charge_without_order", None)]
    assert (stray_row.gateway_id, stray_row.theirs_amount, stray_row.theirs_currency) == (
        stray.payment_id,
        4200,
        "usd",
    )
    short = rows[("refund_differs", short_refund)]
    assert (short.ours_amount, short.theirs_amount) == (2000, 999)
    assert (
        rows[("refund_differs", failed_here)].ours_status,
        rows[("refund_differs", failed_here)].theirs_status,
    ) == (
        "failed",
        "succeeded",
    )
    unknown = rows[("refund_unknown", refunded_elsewhere)]
    assert (unknown.gateway_id, unknown.theirs_amount) == (outside.refund_id, 500)
    miscount = rows[("refunded_amount_differs", miscounted)]
    assert (miscount.ours_amount, miscount.theirs_amount) == (123, 0)


def test_a_payment_over_the_periods_edge_at_the_gateway_is_not_a_mismatch(db, customer):
    """Our clock and the gateway's differ by a moment: at midnight one side's payment
    falls in the period and the other's in the day before. Neither is reported."""
    number = buy(db, customer)
    lifecycle.cancel_order(db, SUPPORT, number)
    payment_id = gateway_payment_id(db, number)
    yesterday = utcnow() - dt.timedelta(days=1)
    with db.write() as conn:
        conn.execute(update(sim_charges).where(sim_charges.c.id == payment_id).values(created_at=yesterday))
        conn.execute(
            update(sim_refunds).where(sim_refunds.c.charge_id == payment_id).values(created_at=yesterday)
        )
    gateway = SimulatedGateway(db)

    assert reconcile(db, gateway, today()).clean  # ours in the period, theirs the day before
    day_before = Period(yesterday.date(), yesterday.date())
    assert reconcile(db, gateway, day_before).clean  # theirs in the period, ours the day after


def test_the_ledger_is_listed_in_pages(db, customer, monkeypatch):
    numbers = [buy(db, customer) for _ in range(5)]
    gateway = SimulatedGateway(db)
    monkeypatch.setattr(gateway, "page_size", 2)
    period = today()

    listed = list(gateway.list_payments(created_from=period.start, created_to=period.end))

    assert sorted(p.reference for p in listed) == sorted(numbers)
    assert len({p.payment_id for p in listed}) == 5
    assert reconcile(db, gateway, period).clean


def test_the_csv_has_a_row_per_mismatch_with_exact_amounts_and_safe_cells(db, customer):
    number = buy(db, customer, "PASS-JPY")
    with db.write() as conn:
        conn.execute(update(orders).where(orders.c.number == number).values(refunded_amount=-5))
    report = reconcile(db, SimulatedGateway(db), today())

    data = report_csv(report.mismatches)

    assert b"\r\n" in data
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    assert [(r["kind"], r["order_number"], r["ours_amount"], r["theirs_amount"]) for r in rows] == [
        ("refunded_amount_differs", number, "-5", "0")
    ]
    assert rows[0]["ours_currency"] == "jpy"


def test_a_period_that_ends_before_it_starts_is_refused():
    from orders_core.errors import ValidationError

    with pytest.raises(ValidationError, match="ends"):
        Period.parse("2026-02-01", "2026-01-01")
    with pytest.raises(ValidationError, match="is not a day"):
        Period.parse("yesterday", None)


# -- as a job, stored, and who may ------------------------------------------------------------
ANALYST = Actor("analyst@ordersdesk.test", Role.ANALYST)


def test_a_reconcile_job_stores_its_report_and_reads_it_back(db, customer, clean_books):
    from orders_core import reconciliation_jobs
    from orders_core.job_engine import run_job_here

    with db.write() as conn:
        conn.execute(
            update(orders).where(orders.c.number == clean_books["paid"][1]).values(refunded_amount=7)
        )

    queued = reconciliation_jobs.start_reconciliation(db, ANALYST, today())
    assert (queued.status, queued.gateway, queued.job_id is not None) == ("queued", "simulated", True)
    job = run_job_here(db, queued.job_id)

    assert (job.action, job.status, job.succeeded, job.failed) == ("reconcile", "completed", 1, 0)
    run = reconciliation_jobs.get_run(db, ANALYST, queued.id)
    assert (run.status, run.progress, run.mismatches) == ("completed", 1.0, 1)
    assert run.counts["refunded_amount_differs"] == 1 and sum(run.counts.values()) == 1
    assert run.payments_checked == 5
    rows = reconciliation_jobs.run_mismatches(db, ANALYST, run.id)
    assert [(m.kind.value, m.order_number, m.ours_amount) for m in rows] == [
        ("refunded_amount_differs", clean_books["paid"][1], 7)
    ]
    assert clean_books["paid"][1].encode() in reconciliation_jobs.run_csv(db, ANALYST, run.id)
    assert [r.id for r in reconciliation_jobs.list_runs(db, ANALYST)] == [run.id]


def test_a_reconcile_job_whose_gateway_fails_fails_with_the_reason(db, customer, clean_books, monkeypatch):
    from orders_core import reconciliation_jobs
    from orders_core.errors import GatewayUnavailable
    from orders_core.job_engine import run_job_here

    def unreachable(self, **_period):
        raise GatewayUnavailable("Could not reach the gateway.", "api_connection_error")

    monkeypatch.setattr(SimulatedGateway, "list_payments", unreachable)
    queued = reconciliation_jobs.start_reconciliation(db, ANALYST, today())

    job = run_job_here(db, queued.job_id)

    assert (job.status, job.failed) == ("failed", 1)
    assert "Could not reach the gateway" in (job.error or "")
    run = reconciliation_jobs.read_run(db, queued.id)
    assert run.status == "failed" and "Could not reach the gateway" in (run.error or "")


@pytest.mark.parametrize("role", [Role.ANALYST, Role.SUPPORT, Role.OPS, Role.ADMIN])
def test_analysts_and_every_role_above_may_reconcile(db, catalog, role):
    from orders_core import reconciliation_jobs

    actor = Actor(f"{role.value}@ordersdesk.test", role)

    run = reconciliation_jobs.start_reconciliation(db, actor, today())

    assert reconciliation_jobs.get_run(db, actor, run.id).actor == actor.email


def test_a_customer_or_a_deactivated_analyst_may_not_reconcile(db, customer):
    from orders_core import reconciliation_jobs, staff
    from orders_core.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        reconciliation_jobs.start_reconciliation(
            db, staff.customer_actor(customer.id, customer.email), today()
        )
    staff.set_staff_active(db, staff.SYSTEM, ANALYST.email, False)
    with pytest.raises(PermissionDenied):
        reconciliation_jobs.start_reconciliation(db, ANALYST, today())


def test_a_reconciliation_is_not_a_bulk_action_over_orders(db, customer, clean_books):
    from orders_core import jobs
    from orders_core.errors import ValidationError

    with pytest.raises(ValidationError, match="covers a period"):
        jobs.enqueue(db, ANALYST, "reconcile", order_numbers=clean_books["paid"])
    with pytest.raises(ValidationError, match="covers a period"):
        jobs.preflight(db, ANALYST, "reconcile", order_numbers=clean_books["paid"])


def test_the_demo_seeds_books_reconcile_clean_read_in_small_chunks(db, monkeypatch):
    """The bulk seed writes our books and the simulated ledger side by side (every
    status, refunds included): over its whole 180 days they agree, read in chunks of 7
    rows of ours and pages of 5 of the gateway's."""
    from orders_core import demo, reconciliation

    demo.seed(db, orders=120, random_seed=5)
    monkeypatch.setattr(reconciliation, "CHUNK", 7)
    gateway = SimulatedGateway(db)
    monkeypatch.setattr(gateway, "page_size", 5)
    day = utcnow().date()

    report = reconcile(db, gateway, Period(day - dt.timedelta(days=190), day))

    assert report.clean, [m.as_dict() for m in report.mismatches][:5]
    assert report.orders_checked == 120
    assert report.payments_checked > 100 and report.payments_checked == report.gateway_charges
    assert report.refunds_checked > 0 and report.refunds_checked == report.gateway_refunds


def test_an_order_from_before_the_period_refunded_in_it_is_checked(db, customer):
    number = buy(db, customer, "PASS-USD", 2)
    lifecycle.cancel_order(db, SUPPORT, number)
    long_ago = utcnow() - dt.timedelta(days=60)
    with db.write() as conn:
        conn.execute(
            update(orders).where(orders.c.number == number).values(created_at=long_ago, refunded_amount=400)
        )
    gateway = SimulatedGateway(db)

    in_period = reconcile(db, gateway, today())  # the refund was made today

    assert found(in_period) == {("refunded_amount_differs", number)}
    assert in_period.orders_checked == 1
    last_week = Period(utcnow().date() - dt.timedelta(days=8), utcnow().date() - dt.timedelta(days=1))
    assert reconcile(db, gateway, last_week).orders_checked == 0


def test_a_reconcile_job_whose_requester_lost_access_stops_saying_why(db, customer, clean_books):
    from orders_core import reconciliation_jobs, staff
    from orders_core.job_engine import run_job_here

    queued = reconciliation_jobs.start_reconciliation(db, ANALYST, today())
    staff.set_staff_active(db, staff.SYSTEM, ANALYST.email, False)

    job = run_job_here(db, queued.job_id)

    assert (job.status, job.failed) == ("failed", 1)
    assert "access withdrawn" in (job.error or "")
    run = reconciliation_jobs.read_run(db, queued.id)
    assert run.status == "failed" and run.mismatches == 0
    from orders_core import jobs
    from orders_core.errors import ValidationError

    with pytest.raises(ValidationError, match="start a new one"):
        jobs.retry_failed(db, staff.SYSTEM, job.id)


def test_a_refund_under_way_is_left_to_it_and_a_stalled_one_is_reported(db, customer):
    """A pending refund whose lease is held is being made now: not a mismatch. Once
    the lease has run out it is an interrupted refund, and the report says so."""
    number = buy(db, customer, "PASS-USD", 2)
    lifecycle.cancel_order(db, SUPPORT, number)
    with db.write() as conn:
        order_id = conn.execute(select(orders.c.id).where(orders.c.number == number)).scalar_one()
        conn.execute(
            update(refunds)
            .where(refunds.c.order_id == order_id)
            .values(status="pending", gateway_refund_id=None, locked_until=utcnow() + dt.timedelta(minutes=1))
        )
        conn.execute(update(orders).where(orders.c.id == order_id).values(refunded_amount=0))
        conn.execute(sim_refunds.delete())  # the gateway has not made it yet
    gateway = SimulatedGateway(db)

    assert reconcile(db, gateway, today()).clean

    with db.write() as conn:
        conn.execute(
            update(refunds)
            .where(refunds.c.order_id == order_id)
            .values(locked_until=utcnow() - dt.timedelta(1))
        )
    stalled = reconcile(db, gateway, today())
    assert [(m.kind.value, m.order_number, m.ours_status, m.theirs_status) for m in stalled.mismatches] == [
        ("refund_differs", number, "pending", None)
    ]
