"""An export job of a filtered selection is frozen as its filters and an order-id bound
(orders_core/export_selection.py), not as one job item per order; it writes the orders
with id <= the bound that match the filters when it runs. Listed selections keep
their job items. A running export shows the rows written so far. SQLite and PostgreSQL."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy import func, select

from orders_core import export_engine, jobs, lifecycle
from orders_core.job_engine import exports as export_jobs
from orders_core.queries import OrderFilters
from orders_core.schema import job_items, orders
from orders_core.schema import jobs as jobs_table
from orders_core.staff import SYSTEM
from tests.integration.test_jobs import ANALYST, OPS, _shopper, new_orders, run

sqlite_only = pytest.mark.parametrize("database_url", [pytest.param("sqlite", id="sqlite")], indirect=True)


@pytest.fixture
def customer(catalog):
    return _shopper(catalog)


@pytest.fixture(autouse=True)
def exports_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("ORDERS_DATA_DIR", str(tmp_path))


def exported_numbers(job) -> list[str]:
    with open(Path(job.export_path), newline="", encoding="utf-8") as f:
        return [row["order_number"] for row in csv.DictReader(f)]


def job_row(db, job_id):
    with db.read() as conn:
        return conn.execute(select(jobs_table).where(jobs_table.c.id == job_id)).one()


def item_count(db, job_id) -> int:
    with db.read() as conn:
        return conn.execute(
            select(func.count()).select_from(job_items).where(job_items.c.job_id == job_id)
        ).scalar_one()


def test_a_filtered_export_is_frozen_as_its_filters_and_the_highest_order_id_without_job_items(db, customer):
    numbers = new_orders(db, customer, 4)
    lifecycle.fulfill_order(db, OPS, numbers[0])
    job = jobs.enqueue(db, ANALYST, "export", filters=OrderFilters.parse(status="paid"))
    row = job_row(db, job.id)
    with db.read() as conn:
        highest = conn.execute(select(func.max(orders.c.id))).scalar_one()
    assert (row.selection_max_id, job.total, item_count(db, job.id)) == (highest, 3, 0)
    assert OrderFilters.parse(status="paid") == export_jobs_filters(row)


def export_jobs_filters(row) -> OrderFilters:
    from orders_core.export_selection import filters_from_json

    return filters_from_json(row.selection_filters)


def test_orders_placed_after_the_export_was_asked_for_are_not_written(db, customer):
    before = new_orders(db, customer, 3)
    job = jobs.enqueue(db, ANALYST, "export", filters=OrderFilters())
    after = new_orders(db, customer, 2)  # same filters match them; their ids are above the bound
    assert run(db) == 3
    done = jobs.get_job(db, job.id, actor=SYSTEM)
    assert exported_numbers(done) == before
    assert set(after).isdisjoint(exported_numbers(done))
    assert (done.status, done.total, done.succeeded, done.failed, done.export_rows) == (
        "completed",
        3,
        3,
        0,
        3,
    )
    assert done.progress == 1.0


def test_the_filters_are_applied_when_the_export_runs_to_the_orders_that_existed_when_it_was_asked_for(
    db, customer
):
    a, b, c = new_orders(db, customer, 3)
    lifecycle.fulfill_order(db, OPS, c)
    job = jobs.enqueue(db, ANALYST, "export", filters=OrderFilters.parse(status="fulfilled"))
    assert job.total == 1  # c, when it was asked for
    lifecycle.fulfill_order(db, OPS, a)  # starts matching before the run: written, as fulfilled
    lifecycle.return_order(db, OPS, c)  # stops matching before the run: left out
    [late] = new_orders(db, customer, 1)
    lifecycle.fulfill_order(db, OPS, late)  # matches, but placed after: never written
    run(db)
    done = jobs.get_job(db, job.id, actor=SYSTEM)
    assert exported_numbers(done) == [a]
    # The job's numbers end as what the file holds, so it never shows "not processed".
    assert (done.status, done.total, done.succeeded, done.pending) == ("completed", 1, 1, 0)


def test_a_listed_export_keeps_one_job_item_per_order_and_marks_them_done(db, customer):
    numbers = new_orders(db, customer, 3)
    job = jobs.enqueue(db, ANALYST, "export", order_numbers=[numbers[2], numbers[0]])
    assert item_count(db, job.id) == 2 and job_row(db, job.id).selection_max_id is None
    assert run(db) == 2
    done = jobs.get_job(db, job.id, actor=SYSTEM)
    assert (done.status, done.succeeded, done.export_rows) == ("completed", 2, 2)
    assert exported_numbers(done) == [numbers[0], numbers[2]]  # the file is in order id order


def test_a_filtered_export_that_fails_fails_the_job_with_the_reason(db, customer, monkeypatch):
    from orders_core import export

    new_orders(db, customer, 2)
    job = jobs.enqueue(db, ANALYST, "export", filters=OrderFilters())

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export, "export_orders", disk_full)
    run(db)
    done = jobs.get_job(db, job.id, actor=SYSTEM)
    assert (done.status, done.succeeded, done.failed, done.export_path) == ("failed", 0, 2, None)
    assert "No space left on device" in done.error


def test_a_second_worker_leaves_a_running_filtered_export_alone(db, customer):
    new_orders(db, customer, 2)
    job = jobs.enqueue(db, ANALYST, "export", filters=OrderFilters())
    # A worker that finds nothing to claim "finishes" jobs with no pending items: never
    # a filtered export, which has none and is closed by its own run.
    assert jobs.finish_if_done(db, job.id) is None
    assert jobs.get_job(db, job.id, actor=SYSTEM).status == "queued"


@sqlite_only
def test_a_running_export_shows_the_rows_written_so_far_on_the_job(db, customer, monkeypatch):
    numbers = new_orders(db, customer, 7)
    job = jobs.enqueue(db, ANALYST, "export", filters=OrderFilters())
    monkeypatch.setattr(export_engine, "BATCH_ROWS", 2)  # read 2 orders at a time
    monkeypatch.setattr(export_jobs, "PROGRESS_SECONDS", 0.0)  # record every batch
    seen: list[tuple[str, int, int]] = []
    record = export_jobs._ProgressRecorder.__call__

    def record_then_look(self, rows):
        record(self, rows)
        shown = jobs.get_job(db, job.id, actor=SYSTEM)  # what the jobs page reads
        seen.append((shown.status, shown.succeeded, shown.total))

    monkeypatch.setattr(export_jobs._ProgressRecorder, "__call__", record_then_look)
    run(db)
    assert seen == [("running", n, 7) for n in (2, 4, 6, 7)]
    done = jobs.get_job(db, job.id, actor=SYSTEM)
    assert exported_numbers(done) == numbers and done.succeeded == 7


def test_retrying_a_failed_filtered_export_exports_the_same_selection(db, customer, monkeypatch):
    from orders_core import export

    numbers = new_orders(db, customer, 2)
    job = jobs.enqueue(db, ANALYST, "export", filters=OrderFilters())
    real = export.export_orders

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export, "export_orders", disk_full)
    run(db)
    monkeypatch.setattr(export, "export_orders", real)
    new_orders(db, customer, 1)  # after the first ask: not in the retry either
    retry = jobs.retry_failed(db, OPS, job.id)
    assert (retry.total, item_count(db, retry.id)) == (2, 0)
    run(db)
    done = jobs.get_job(db, retry.id, actor=SYSTEM)
    assert (done.status, exported_numbers(done)) == ("completed", numbers)
