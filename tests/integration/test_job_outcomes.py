"""What a job did and what can still be done about it: the outcome of a Cancel (in time,
too late, racing the last chunk), which failures "Retry failed" retries and why not the
others, every item paged and as CSV, the finished-job summary, paced chunk sizes, the
bulk reason in each order's timeline; on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import io

import pandas as pd
import pytest
from sqlalchemy import select

from orders_core import job_outcomes, jobs, lifecycle
from orders_core.config import load_settings
from orders_core.errors import GatewayUnavailable, ValidationError
from orders_core.job_engine.pacing import move_chunk_size
from orders_core.payments import Gateways
from orders_core.schema import job_items, order_events
from orders_core.staff import SYSTEM
from tests.integration.test_jobs import OPS, SUPPORT, new_orders, run, status_of
from tests.integration.test_jobs import customer as customer  # noqa: F401 - the fixture
from tests.support.fakes import FlakyGateway


class CancelingGateway:
    """The real gateway; staff press Cancel while refund number `at` runs."""

    def __init__(self, db, inner, at: int):
        self.db, self.inner, self.at, self.refunds, self.job_id = db, inner, at, 0, None
        self.name = inner.name
        self.answer: jobs.JobView | None = None

    def __getattr__(self, method):
        return getattr(self.inner, method)

    def refund(self, *args, **kwargs):
        self.refunds += 1
        if self.refunds == self.at:
            self.answer = jobs.cancel_job(self.db, OPS, self.job_id)
        return self.inner.refund(*args, **kwargs)


def run_canceled_at(db, numbers, *, at: int, chunk: int) -> tuple[jobs.JobView, CancelingGateway]:
    gateway = CancelingGateway(db, Gateways(db).default, at)
    job = jobs.enqueue(db, OPS, "cancel", order_numbers=numbers, reason="Warehouse fire")
    gateway.job_id = job.id
    run(db, gateways=Gateways(db).use(gateway), job_chunk_size=chunk)
    return jobs.get_job(db, job.id, actor=SYSTEM), gateway


# -- Cancel job -------------------------------------------------------------------------------
def test_a_cancel_in_time_is_recorded_and_the_page_text_says_how_far_the_job_got(db, customer):
    numbers = new_orders(db, customer, 8)
    job, gateway = run_canceled_at(db, numbers, at=1, chunk=2)
    assert gateway.answer is not None and gateway.answer.cancel_requested
    assert job_outcomes.cancel_outcome(gateway.answer) == (
        "Cancel recorded: the job stops after the orders in progress (0 of 8 done so far)."
    )
    assert (job.status, job.succeeded, job.pending) == ("canceled", 2, 6)
    assert job_outcomes.cancel_outcome(job) == "Canceled after 2 of 8; 6 not touched."
    assert [status_of(db, n) for n in numbers] == ["canceled"] * 2 + ["paid"] * 6


def test_a_cancel_racing_the_last_chunk_is_reported_as_too_late_and_nothing_as_canceled(db, customer):
    numbers = new_orders(db, customer, 3)
    job, gateway = run_canceled_at(db, numbers, at=3, chunk=3)  # during the last refund
    assert gateway.answer is not None and gateway.answer.cancel_requested  # it was recorded…
    assert (job.status, job.succeeded, job.cancel_requested) == ("completed", 3, True)  # …too late
    text = job_outcomes.cancel_outcome(job)
    assert text.startswith("The cancel came too late") and "nothing was canceled" in text
    assert "3 succeeded" in text
    assert [status_of(db, n) for n in numbers] == ["canceled"] * 3


def test_a_cancel_after_the_job_finished_is_refused_and_leaves_no_cancel_recorded(db, customer):
    numbers = new_orders(db, customer, 2)
    job = jobs.enqueue(db, OPS, "fulfill", order_numbers=numbers)
    run(db)
    with pytest.raises(ValidationError, match="there is nothing to cancel"):
        jobs.cancel_job(db, OPS, job.id)
    done = jobs.get_job(db, job.id, actor=SYSTEM)
    assert (done.status, done.cancel_requested) == ("completed", False)
    assert job_outcomes.cancel_outcome(done) is None


# -- Retry failed ------------------------------------------------------------------------------
def test_retry_failed_counts_and_retries_only_the_failures_a_retry_can_fix(db, customer):
    numbers = new_orders(db, customer, 5)
    lifecycle.fulfill_order(db, OPS, numbers[4])  # fails as an illegal move: Fulfilled
    down = FlakyGateway(Gateways(db).default, "refund", GatewayUnavailable("503 from the gateway"), 10_000)
    first = jobs.enqueue(db, OPS, "cancel", order_numbers=numbers)
    run(db, gateways=Gateways(db).use(down), retry_budget_seconds=0.3)
    first = jobs.get_job(db, first.id, actor=SYSTEM)
    assert (first.status, first.failed) == ("failed", 5)
    with db.read() as conn:
        kinds = dict(
            conn.execute(
                select(job_items.c.order_number, job_items.c.failure_kind).where(
                    job_items.c.job_id == first.id
                )
            ).all()
        )
    assert [kinds[n] for n in numbers] == ["gateway_unavailable"] * 4 + ["illegal_move"]
    lifecycle.cancel_order(db, SUPPORT, numbers[0], reason="Customer called")  # Canceled now

    plan = jobs.retry_plan(db, first.id, actor=SUPPORT)
    assert (plan.failed, plan.retryable) == (5, 3)
    assert plan.not_retryable == {
        "the order is Canceled now (Cancel applies to Paid orders only)": 1,
        "the order is Fulfilled now (Cancel applies to Paid orders only)": 1,
    }
    assert plan.summary() == (
        "3 of 5 failed orders can be retried; 2 cannot: "
        "1 because the order is Canceled now (Cancel applies to Paid orders only); "
        "1 because the order is Fulfilled now (Cancel applies to Paid orders only)."
    )

    retry = jobs.retry_failed(db, OPS, first.id)
    assert (retry.total, retry.retry_of) == (3, first.id)
    with db.read() as conn:
        queued = conn.execute(
            select(job_items.c.order_number).where(job_items.c.job_id == retry.id).order_by(job_items.c.seq)
        ).scalars()
        assert list(queued) == numbers[1:4]
    run(db)
    assert jobs.get_job(db, retry.id, actor=SYSTEM).status == "completed"
    assert [status_of(db, n) for n in numbers] == ["canceled"] * 4 + ["fulfilled"]


def test_retry_failed_refuses_when_no_failure_can_succeed_and_says_why(db, customer):
    numbers = new_orders(db, customer, 2)
    for number in numbers:
        lifecycle.cancel_order(db, SUPPORT, number)
    job = jobs.enqueue(db, OPS, "fulfill", order_numbers=numbers)
    run(db)
    with pytest.raises(ValidationError, match=r"nothing to retry\. 0 of 2 failed orders can be retried"):
        jobs.retry_failed(db, OPS, job.id)
    with db.read() as conn:
        assert conn.execute(select(jobs.jobs.c.id).where(jobs.jobs.c.retry_of == job.id)).first() is None


# -- every item, paged and as CSV ------------------------------------------------------------------
def test_the_items_of_a_job_are_paged_in_selection_order_and_the_csv_has_every_one(db, customer, monkeypatch):
    numbers = new_orders(db, customer, 23)
    lifecycle.cancel_order(db, SUPPORT, numbers[5])
    job = jobs.enqueue(db, OPS, "fulfill", order_numbers=numbers)
    run(db)
    pages = [job_outcomes.job_items_page(db, job.id, actor=SUPPORT, page=p, page_size=10) for p in (1, 2, 3)]
    assert [p.pages for p in pages] == [3, 3, 3] and [len(p.rows) for p in pages] == [10, 10, 3]
    assert [r.order for p in pages for r in p.rows] == numbers
    failed = pages[0].rows[5]
    assert (failed.outcome, failed.retry_can_help) == ("failed", False)
    assert failed.reason == f"Order {numbers[5]} is Canceled; Fulfill applies to Paid orders only"
    only_failed = job_outcomes.job_items_page(db, job.id, actor=SUPPORT, outcome="failed")
    assert (only_failed.total, [r.order for r in only_failed.rows]) == (1, [numbers[5]])
    beyond = job_outcomes.job_items_page(db, job.id, actor=SUPPORT, page=99, page_size=10)
    assert beyond.page == 3  # clamped to the last page

    monkeypatch.setattr(job_outcomes, "CSV_BATCH", 7)  # several batches
    parts = list(job_outcomes.job_items_csv(db, job.id, actor=SUPPORT))
    assert len(parts) == 1 + 4
    frame = pd.read_csv(io.BytesIO(b"".join(parts)), keep_default_na=False)
    assert list(frame.columns) == job_outcomes.CSV_COLUMNS
    assert list(frame["order"]) == numbers
    assert list(frame["outcome"]).count("succeeded") == 22
    assert frame.loc[5, "retry_can_help"] == "no" and "Canceled" in frame.loc[5, "reason"]


# -- summaries, pacing, the reason ---------------------------------------------------------------
def test_a_finished_job_is_summed_up_in_one_line_with_its_own_verb(db, customer):
    numbers = new_orders(db, customer, 3)
    lifecycle.cancel_order(db, SUPPORT, numbers[0])
    job = jobs.enqueue(db, OPS, "fulfill", order_numbers=numbers)
    run(db)
    done = jobs.get_job(db, job.id, actor=SYSTEM)
    assert job_outcomes.finished_summary(done) == f"Job #{job.id} finished: 2 fulfilled, 1 failed."
    assert job_outcomes.active_jobs_of(db, actor=OPS) == []
    queued = jobs.enqueue(db, OPS, "fulfill", order_numbers=numbers[1:])
    assert job_outcomes.active_jobs_of(db, actor=OPS) == [queued.id]
    assert job_outcomes.active_jobs_of(db, actor=SUPPORT) == []


def test_paced_refund_chunks_are_small_enough_to_show_progress_every_second():
    settings = load_settings()
    paced = dataclasses.replace(settings, gateway_requests_per_second=30, gateway="simulated")
    unpaced = dataclasses.replace(settings, gateway_requests_per_second=None, gateway="simulated")
    assert move_chunk_size(paced, 500, refunds=True) == 8  # 30/s × 0.8 s ÷ 3 requests
    assert move_chunk_size(paced, 500, refunds=False) == 500  # a Fulfill calls no gateway
    assert move_chunk_size(unpaced, 500, refunds=True) == 500  # fast jobs are not slowed


def test_the_bulk_reason_is_kept_on_the_job_and_in_each_orders_timeline(db, customer):
    numbers = new_orders(db, customer, 2)
    job = jobs.enqueue(db, OPS, "cancel", order_numbers=numbers, reason="Warehouse fire")
    assert job.reason == "Warehouse fire"
    run(db)
    with db.read() as conn:
        notes = conn.execute(
            select(order_events.c.note).where(
                order_events.c.job_id == job.id, order_events.c.action == "cancel"
            )
        ).scalars()
        assert ["Warehouse fire" in (n or "") for n in notes] == [True, True]


def test_a_job_of_100000_items_pages_on_the_server_and_its_csv_has_every_item(db, customer):
    """Items written straight into job_items (the subject is reading them back): the last
    page is exactly the last items, and the CSV streams all 100,000 in batches."""
    from sqlalchemy import insert

    from orders_core.clock import utcnow

    total = 100_000
    with db.write() as conn:
        job_id = conn.execute(
            insert(jobs.jobs).values(
                action="fulfill",
                status="completed_with_failures",
                actor="ops@ordersdesk.test",
                actor_role="ops",
                selection="synthetic",
                reason="",
                total=total,
                succeeded=total - total // 10,
                failed=total // 10,
                created_at=utcnow(),
                cancel_requested=False,
            )
        ).inserted_primary_key[0]
        for start in range(1, total + 1, 10_000):
            conn.execute(
                insert(job_items),
                [
                    {
                        "job_id": job_id,
                        "seq": seq,
                        "order_id": seq,
                        "order_number": f"ORD-{seq:06d}",
                        "status": "failed" if seq % 10 == 0 else "succeeded",
                        "reason": f"Order ORD-{seq:06d} is Canceled; Fulfill applies to Paid orders only"
                        if seq % 10 == 0
                        else None,
                        "failure_kind": "illegal_move" if seq % 10 == 0 else None,
                        "attempts": 1,
                    }
                    for seq in range(start, min(total, start + 9_999) + 1)
                ],
            )
    last = job_outcomes.job_items_page(db, job_id, actor=SUPPORT, page=1000, page_size=100)
    assert (last.pages, last.total) == (1000, total)
    assert [r.order for r in last.rows] == [f"ORD-{seq:06d}" for seq in range(99_901, 100_001)]
    failed = job_outcomes.job_items_page(db, job_id, actor=SUPPORT, page=100, page_size=100, outcome="failed")
    assert (failed.total, failed.rows[-1].order) == (total // 10, "ORD-100000")
    assert failed.rows[0].retry_can_help is False  # no such order any more: no retry can help

    batches = 0
    rows = 0
    for part in job_outcomes.job_items_csv(db, job_id, actor=SUPPORT):
        batches += 1
        rows += part.count(b"\n")
    assert rows == total + 1  # and the header
    assert batches == 1 + total // job_outcomes.CSV_BATCH
