"""What a job did, for people: every order it touched with its outcome (a page at a
time, or all of them as a streamed CSV), one-line summaries of a finished job, and
what a Cancel did or did not do.

Reads only; every function re-reads the database (jobs and job_items)."""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Iterator

from sqlalchemy import func, select

from .csv_cells import spreadsheet_safe
from .db import Database
from .errors import NotFound
from .job_failures import parse_kind
from .jobs import (
    ACTIVE_STATUSES,
    ITEM_FAILED,
    ITEM_PENDING,
    ITEM_SUCCEEDED,
    JobAction,
    JobStatus,
    JobView,
    _job_id,
    _view,
)
from .queries import iso
from .schema import job_items, jobs, orders
from .staff import Actor, Permission, authorize
from .status import BULK_SOURCE_STATUSES, Action, Status

ITEM_OUTCOMES = (ITEM_SUCCEEDED, ITEM_FAILED, ITEM_PENDING)
MAX_PAGE_SIZE = 1000
CSV_BATCH = 5000
CSV_COLUMNS = ["order", "outcome", "reason", "retry_can_help", "finished_at"]

# The past tense of each action, for "1,286 fulfilled".
DONE_VERB = {"fulfill": "fulfilled", "cancel": "canceled", "return": "returned", "export": "exported"}


@dataclasses.dataclass
class JobItemRow:
    seq: int
    order: str
    outcome: str  # succeeded, failed, pending
    reason: str
    retry_can_help: bool | None  # None: not a failure
    finished_at: str | None

    @property
    def outcome_label(self) -> str:
        return {"succeeded": "Succeeded", "failed": "Failed", "pending": "Not processed"}.get(
            self.outcome, self.outcome.capitalize()
        )


@dataclasses.dataclass
class JobItemsPage:
    rows: list[JobItemRow]
    total: int  # items matching the outcome filter
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


def _outcome(value: str | None) -> str | None:
    if value in (None, "", "all"):
        return None
    if value not in ITEM_OUTCOMES:
        raise ValueError(f"Unknown outcome {value!r}; use one of {', '.join(ITEM_OUTCOMES)}.")
    return value


def _row(r, move: Action | None) -> JobItemRow:
    kind = parse_kind(r.failure_kind)
    failed = r.status == ITEM_FAILED
    can_help = None
    if failed:  # the same rule as job_failures.retryable_condition, for one row
        eligible = move is None or (
            r.order_status is not None and Status(r.order_status) in BULK_SOURCE_STATUSES[move]
        )
        can_help = eligible and (kind is None or kind.retryable)
    return JobItemRow(
        seq=r.seq,
        order=r.order_number,
        outcome=r.status,
        reason=r.reason or "" if failed else "",
        retry_can_help=can_help,
        finished_at=iso(r.finished_at),
    )


def _move_of(conn, job_id: int) -> Action | None:
    action = conn.execute(select(jobs.c.action).where(jobs.c.id == job_id)).scalar_one_or_none()
    if action is None:
        raise NotFound(f"No job #{job_id}.")
    return JobAction(action).move


def _items(where):
    return (
        select(*_COLUMNS, orders.c.status.label("order_status"))
        .select_from(job_items.outerjoin(orders, orders.c.id == job_items.c.order_id))
        .where(*where)
        .order_by(job_items.c.seq)
    )


_COLUMNS = (
    job_items.c.seq,
    job_items.c.order_number,
    job_items.c.status,
    job_items.c.reason,
    job_items.c.failure_kind,
    job_items.c.finished_at,
)


def job_items_page(
    db: Database,
    job_id: int,
    *,
    actor: Actor,
    page: int = 1,
    page_size: int = 100,
    outcome: str | None = None,
) -> JobItemsPage:
    """One page of the orders job `job_id` touched, in selection order, with outcomes;
    `outcome` keeps only succeeded, failed or pending (not processed) items."""
    authorize(db, actor, Permission.VIEW)
    job_id = _job_id(job_id)
    outcome = _outcome(outcome)
    page_size = max(1, min(int(page_size), MAX_PAGE_SIZE))
    where = [job_items.c.job_id == job_id]
    if outcome:
        where.append(job_items.c.status == outcome)
    with db.read() as conn:
        move = _move_of(conn, job_id)
        total = conn.execute(select(func.count()).select_from(job_items).where(*where)).scalar_one()
        pages = max(1, -(-total // page_size))
        page = max(1, min(int(page), pages))
        rows = conn.execute(_items(where).limit(page_size).offset((page - 1) * page_size)).all()
    return JobItemsPage([_row(r, move) for r in rows], int(total), page, page_size)


def job_items_csv(db: Database, job_id: int, *, actor: Actor) -> Iterator[bytes]:
    """Every item of job `job_id` as UTF-8 CSV, in batches of CSV_BATCH rows read by seq
    (keyset: each batch is one indexed query), so a million items never sit in memory
    at once. Text cells are spreadsheet-safe (csv_cells)."""
    authorize(db, actor, Permission.VIEW)
    job_id = _job_id(job_id)
    with db.read() as conn:
        move = _move_of(conn, job_id)
    yield _csv_lines([CSV_COLUMNS])
    after = None
    while True:
        where = [job_items.c.job_id == job_id]
        if after is not None:
            where.append(job_items.c.seq > after)
        with db.read() as conn:
            rows = conn.execute(_items(where).limit(CSV_BATCH)).all()
        if not rows:
            return
        after = rows[-1].seq
        items = (_row(r, move) for r in rows)
        yield _csv_lines(
            [
                i.order,
                i.outcome,
                i.reason,
                "" if i.retry_can_help is None else ("yes" if i.retry_can_help else "no"),
                i.finished_at or "",
            ]
            for i in items
        )
        if len(rows) < CSV_BATCH:
            return


def _csv_lines(rows) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        writer.writerow([spreadsheet_safe(cell) for cell in row])
    return buffer.getvalue().encode("utf-8")


def finished_summary(job: JobView) -> str:
    """ "Job #9 finished: 1,286 fulfilled, 0 failed", for a toast or a notice."""
    verb = DONE_VERB.get(job.action, "done")
    if job.action == JobAction.EXPORT.value and job.status == JobStatus.COMPLETED.value:
        rows = job.export_rows if job.export_rows is not None else job.succeeded
        return f"Job #{job.id} finished: {rows:,} orders exported."
    counts = f"{job.succeeded:,} {verb}, {job.failed:,} failed"
    if job.status == JobStatus.CANCELED.value:
        return f"Job #{job.id} was canceled after {job.succeeded + job.failed:,} of {job.total:,}: {counts}."
    if job.status == JobStatus.FAILED.value:
        return f"Job #{job.id} failed: {counts}."
    return f"Job #{job.id} finished: {counts}."


def cancel_outcome(job: JobView) -> str | None:
    """What a Cancel did to `job`, plainly; None when nobody asked for one."""
    done = job.succeeded + job.failed
    if job.status == JobStatus.CANCELED.value:
        if done == 0:
            return f"Canceled before it started: none of the {job.total:,} orders were touched."
        return f"Canceled after {done:,} of {job.total:,}; {job.pending:,} not touched."
    if not job.cancel_requested:
        return None
    if job.finished:
        return (
            f"The cancel came too late: job #{job.id} had already processed all its orders "
            f"({job.succeeded:,} succeeded, {job.failed:,} failed); nothing was canceled."
        )
    so_far = f"{done:,} of {job.total:,} done so far"
    return f"Cancel recorded: the job stops after the orders in progress ({so_far})."


__all__ = [
    "JobItemRow",
    "JobItemsPage",
    "job_items_page",
    "job_items_csv",
    "finished_summary",
    "cancel_outcome",
    "active_jobs_of",
    "jobs_by_id",
]


def active_jobs_of(db: Database, *, actor: Actor) -> list[int]:
    """Ids of the queued or running jobs that `actor` asked for (the toast's watch list)."""
    actor = authorize(db, actor, Permission.VIEW)
    with db.read() as conn:
        return list(
            conn.execute(
                select(jobs.c.id)
                .where(jobs.c.actor == actor.label, jobs.c.status.in_(ACTIVE_STATUSES))
                .order_by(jobs.c.id)
            ).scalars()
        )


def jobs_by_id(db: Database, job_ids: list[int], *, actor: Actor) -> list[JobView]:
    """The jobs with these ids (a short watch list), in id order."""
    authorize(db, actor, Permission.VIEW)
    if not job_ids:
        return []
    ids = sorted({_job_id(i) for i in job_ids})[:1000]
    with db.read() as conn:
        return [_view(r) for r in conn.execute(select(jobs).where(jobs.c.id.in_(ids)).order_by(jobs.c.id))]
