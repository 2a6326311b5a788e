"""Claims and leases: which worker holds which items of a job, and for how long.

- A move job (fulfill, cancel, return) is worked on in chunks of
  ORDERS_JOB_CHUNK_SIZE items. A worker claims a chunk in one short transaction: the
  first pending items whose lease is free or expired, stamped with the worker's id, a
  lease (ORDERS_JOB_LEASE_SECONDS) and one more attempt. On PostgreSQL the claim
  selects them FOR UPDATE SKIP LOCKED, so several workers share one job's queue
  without waiting for or colliding with each other; on SQLite claims are serialised
  by the write lock (BEGIN IMMEDIATE, WAL, busy timeout). The same transaction marks
  the job running and records the worker in the job's lease.
- An export job, or a reconciliation, has no chunks: the worker holds the job's own lease.
- While a worker works on a chunk (or an export), a heartbeat thread renews its
  leases every third of the lease. A worker that dies stops renewing: once the lease
  has run out, any worker claims those items again and resumes only them.
- The requester is checked against the staff table at every claim: access withdrawn
  since they asked fails what is left of the job, saying why.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, func, or_, select, update

from ..clock import utcnow
from ..db import Database
from ..errors import OrdersError, PermissionDenied
from ..job_failures import FailureKind
from ..jobs import (
    ACTIVE_STATUSES,
    ITEM_FAILED,
    ITEM_PENDING,
    ITEM_SUCCEEDED,
    JobAction,
    JobStatus,
    finish_if_done,
    job_actor,
)
from ..schema import job_items, jobs
from ..staff import Actor, authorize

log = logging.getLogger("orders_core.worker")


@dataclasses.dataclass
class ClaimedItem:
    id: int
    order_id: int
    number: str
    attempts: int
    reason: str | None


@dataclasses.dataclass
class Claim:
    """A chunk of a move job, held by one worker until its lease runs out."""

    job_id: int
    action: JobAction
    actor: Actor | None
    actor_error: str | None
    note: str
    items: list[ClaimedItem]
    seq_range: tuple[int, int]  # the lowest and highest seq of the claimed items


# What a claim reads of each item it holds (ClaimedItem's fields, and seq to order them).
CLAIMED_COLUMNS = (
    job_items.c.id,
    job_items.c.order_id,
    job_items.c.order_number,
    job_items.c.attempts,
    job_items.c.reason,
    job_items.c.seq,
)


def claimed_items(rows: Sequence[Row[*tuple[Any, ...]]]) -> list[ClaimedItem]:
    """The ClaimedItems of rows read as CLAIMED_COLUMNS."""
    return [ClaimedItem(r.id, r.order_id, r.order_number, r.attempts, r.reason) for r in rows]


def claimable(job_id: int, now: dt.datetime) -> list[ColumnElement[bool]]:
    """The items of job `job_id` a worker may claim: pending, their lease free or run out."""
    return [
        job_items.c.job_id == job_id,
        job_items.c.status == ITEM_PENDING,
        or_(job_items.c.lease_expires_at.is_(None), job_items.c.lease_expires_at < now),
    ]


class _Rollback(Exception):
    pass


class Leases:
    """One worker's leases: claiming chunks and exports, renewing them, giving them up.
    Remembers the jobs it touched, so that `release_all` can let go of every one."""

    def __init__(self, db: Database, worker_id: str, lease: dt.timedelta):
        self.db = db
        self.worker_id = worker_id
        self.lease = lease
        self.touched: set[int] = set()

    def claim_chunk(self, job_id: int, size: int) -> Claim | None:
        """Up to `size` claimable items of move job `job_id`; None when there are none,
        the job was canceled or finished, or its requester may no longer do this."""
        now = utcnow()
        until = now + self.lease
        picked = select(job_items.c.id).where(*claimable(job_id, now)).order_by(job_items.c.seq).limit(size)
        if self.db.is_postgres:
            picked = picked.with_for_update(skip_locked=True)
        try:
            with self.db.write() as conn:
                rows = conn.execute(
                    update(job_items)
                    .where(job_items.c.id.in_(picked))
                    .values(worker=self.worker_id, lease_expires_at=until, attempts=job_items.c.attempts + 1)
                    .returning(*CLAIMED_COLUMNS)
                ).all()
                if not rows:
                    raise _Rollback
                job = conn.execute(
                    update(jobs)
                    .where(
                        jobs.c.id == job_id,
                        jobs.c.status.in_(ACTIVE_STATUSES),
                        jobs.c.cancel_requested.is_(False),
                    )
                    .values(
                        status=JobStatus.RUNNING.value,
                        started_at=func.coalesce(jobs.c.started_at, now),
                        lease_owner=self.worker_id,
                        lease_expires_at=until,
                    )
                    .returning(jobs.c.id, jobs.c.action, jobs.c.actor, jobs.c.actor_role, jobs.c.reason)
                ).first()
                if job is None:  # canceled or finished meanwhile: claim nothing
                    raise _Rollback
        except _Rollback:
            return None
        self.touched.add(job_id)
        actor: Actor | None
        try:
            actor, actor_error = job_actor(job), None
        except (OrdersError, ValueError) as error:
            actor, actor_error = None, str(error)
        if actor is not None:
            try:  # the requester as the staff table has them now, at every chunk
                actor = authorize(self.db, actor, JobAction(job.action).permission)
            except PermissionDenied as error:
                reason = f"Stopped: {error} (access withdrawn since {job.actor} asked for this job)"
                fail_pending_items(self.db, job_id, self.worker_id, reason)
                log.warning("job #%d: %s", job_id, reason)
                finish_if_done(self.db, job_id)
                return None
        rows = sorted(rows, key=lambda r: r.seq)
        items = claimed_items(rows)
        note = job.reason or f"Bulk {JobAction(job.action).label} (job #{job_id})"
        return Claim(
            job_id, JobAction(job.action), actor, actor_error, note, items, (rows[0].seq, rows[-1].seq)
        )

    def claim_export(self, job_id: int) -> bool:
        """Take export job `job_id`'s lease: free, run out, or this worker's already."""
        return self._claim_job_lease(job_id, JobAction.EXPORT)

    def claim_reconciliation(self, job_id: int) -> bool:
        """Take reconcile job `job_id`'s lease, as an export's."""
        return self._claim_job_lease(job_id, JobAction.RECONCILE)

    def _claim_job_lease(self, job_id: int, action: JobAction) -> bool:
        now = utcnow()
        with self.db.write() as conn:
            taken = conn.execute(
                update(jobs)
                .where(
                    jobs.c.id == job_id,
                    jobs.c.action == action.value,
                    jobs.c.status.in_(ACTIVE_STATUSES),
                    jobs.c.cancel_requested.is_(False),
                    or_(
                        jobs.c.lease_expires_at.is_(None),
                        jobs.c.lease_expires_at < now,
                        jobs.c.lease_owner == self.worker_id,
                    ),
                )
                .values(
                    status=JobStatus.RUNNING.value,
                    started_at=func.coalesce(jobs.c.started_at, now),
                    lease_owner=self.worker_id,
                    lease_expires_at=now + self.lease,
                )
            ).rowcount
        if taken:
            self.touched.add(job_id)
        return bool(taken)

    def renew(self, job_id: int, items: bool) -> None:
        """Extend this worker's lease on job `job_id` (and on its claimed items)."""
        until = utcnow() + self.lease
        with self.db.write() as conn:
            if items:
                conn.execute(
                    update(job_items)
                    .where(
                        job_items.c.job_id == job_id,
                        job_items.c.worker == self.worker_id,
                        job_items.c.status == ITEM_PENDING,
                    )
                    .values(lease_expires_at=until)
                )
                conn.execute(
                    update(jobs)
                    .where(jobs.c.id == job_id, jobs.c.status == JobStatus.RUNNING.value)
                    .values(lease_owner=self.worker_id, lease_expires_at=until)
                )
            else:
                conn.execute(
                    update(jobs)
                    .where(jobs.c.id == job_id, jobs.c.lease_owner == self.worker_id)
                    .values(lease_expires_at=until)
                )

    def release_chunk(self, claim: Claim, error: str) -> None:
        """A chunk that crashed: its items are free again, with the error kept."""
        try:
            with self.db.write() as conn:
                conn.execute(
                    update(job_items)
                    .where(
                        job_items.c.job_id == claim.job_id,
                        job_items.c.worker == self.worker_id,
                        job_items.c.status == ITEM_PENDING,
                    )
                    .values(lease_expires_at=None, reason=f"Attempt failed: {error}"[:2000])
                )
        except Exception:  # noqa: BLE001 - the lease runs out by itself
            log.warning("job #%d: could not release the chunk", claim.job_id, exc_info=True)

    def release_all(self) -> None:
        """Give up every lease now (the items stay pending for others)."""
        if not self.touched:
            return
        touched = sorted(self.touched)
        try:
            with self.db.write() as conn:
                conn.execute(
                    update(job_items)
                    .where(
                        job_items.c.job_id.in_(touched),
                        job_items.c.worker == self.worker_id,
                        job_items.c.status == ITEM_PENDING,
                    )
                    .values(lease_expires_at=None)
                )
                conn.execute(
                    update(jobs)
                    .where(jobs.c.id.in_(touched), jobs.c.lease_owner == self.worker_id)
                    .values(lease_owner=None, lease_expires_at=None)
                )
            for job_id in touched:
                finish_if_done(self.db, job_id)
        except Exception:  # noqa: BLE001 - the leases run out by themselves
            log.warning("worker %s: could not release its leases", self.worker_id, exc_info=True)
        self.touched.clear()


def still_held(conn: Connection, job_id: int, worker_id: str, **values: object) -> bool:
    """Write `values` on the job if this worker still holds its lease and it runs; False
    when another worker took it over meanwhile (then nothing is written)."""
    return bool(
        conn.execute(
            update(jobs)
            .where(
                jobs.c.id == job_id,
                jobs.c.lease_owner == worker_id,
                jobs.c.status == JobStatus.RUNNING.value,
            )
            .values(**values)
        ).rowcount
    )


def succeed_pending_items(conn: Connection, job_id: int, worker_id: str, *, reason: str | None = None) -> int:
    """A job done as a whole (an export, a reconciliation): every item still pending
    succeeds, in one statement; returns how many."""
    values = dict(
        status=ITEM_SUCCEEDED, worker=worker_id, attempts=job_items.c.attempts + 1, finished_at=utcnow()
    )
    if reason is not None:
        values["reason"] = reason
    return int(
        conn.execute(
            update(job_items)
            .where(job_items.c.job_id == job_id, job_items.c.status == ITEM_PENDING)
            .values(**values)
        ).rowcount
    )


def fail_pending_items(db: Database, job_id: int, worker_id: str, reason: str) -> int:
    """The job as a whole stops: every item still pending fails with `reason`, in one
    statement, and the job keeps it as its error; returns how many failed."""
    now = utcnow()
    with db.write() as conn:
        count = conn.execute(
            update(job_items)
            .where(job_items.c.job_id == job_id, job_items.c.status == ITEM_PENDING)
            .values(
                status=ITEM_FAILED,
                reason=reason[:2000],
                failure_kind=FailureKind.PERMISSION.value,
                worker=worker_id,
                finished_at=now,
                lease_expires_at=None,
            )
        ).rowcount
        conn.execute(
            update(jobs)
            .where(jobs.c.id == job_id)
            .values(
                failed=jobs.c.failed + count, error=reason[:4000], lease_owner=None, lease_expires_at=None
            )
        )
    return int(count)


class Heartbeat:
    """One thread per worker that renews the leases of the unit of work in hand (a
    chunk, or an export) every `interval` seconds, until told it is done."""

    def __init__(self, renew: Callable[[int, bool], None], interval: float, name: str):
        self.renew = renew
        self.interval = interval
        self.name = name
        self._lock = threading.Lock()  # held while renewing, so `holding` ends cleanly
        self._target: tuple[int, bool] | None = None
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def holding(self, job_id: int, *, items: bool) -> Iterator[None]:
        with self._lock:
            self._target = (job_id, items)
            if self._thread is None or not self._thread.is_alive():
                self._closed.clear()
                self._thread = threading.Thread(target=self._run, daemon=True, name=self.name)
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._target = None

    def close(self) -> None:
        self._closed.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=10)

    def _run(self) -> None:
        while not self._closed.wait(self.interval):
            with self._lock:
                if self._target is None:
                    continue
                job_id, items = self._target
                try:
                    self.renew(job_id, items)
                except Exception:  # noqa: BLE001 - try again at the next beat
                    log.warning("job #%d: could not renew the lease", job_id, exc_info=True)
