"""Running an export job: the whole job is one unit of work, held by the job's lease.

The file is written under ORDERS_DATA_DIR/exports; the job records it only while this
worker still holds the lease, so a worker that lost it to another (its heartbeat
stopped long enough) leaves the job to that one rather than recording it twice.

Two kinds of export job (orders_core/export_selection.py):
- a filtered selection, frozen as filters + an id bound, has no job items: this run
  closes the job itself (succeeded and total = the rows written; a failure fails it);
- a listed selection has one job item per order, marked succeeded (or failed) here.
While it runs, `succeeded` counts the rows written so far (at most every
PROGRESS_SECONDS), which is what the jobs page shows as the job's progress.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import NamedTuple

from sqlalchemy import select, update

from ..clock import utcnow
from ..config import Settings
from ..db import Database
from ..errors import OrdersError
from ..jobs import JobStatus, job_actor
from ..schema import jobs
from ..staff import Permission, authorize
from .claims import Heartbeat, fail_pending_items, still_held, succeed_pending_items

log = logging.getLogger("orders_core.worker")

PROGRESS_SECONDS = 0.5


class ExportOutcome(NamedTuple):
    items: int  # items recorded: succeeded when exported, else failed (0: lease lost)
    exported: bool


def run_export_job(
    db: Database, worker_id: str, job_id: int, settings: Settings, heartbeat: Heartbeat
) -> ExportOutcome:
    """Write export job `job_id`'s file and record it (the job's lease is this
    worker's). A failure fails the job (its items) with the reason."""
    with db.read() as conn:
        job = conn.execute(
            select(jobs.c.id, jobs.c.actor, jobs.c.actor_role, jobs.c.selection_max_id).where(
                jobs.c.id == job_id
            )
        ).one()
    filtered = job.selection_max_id is not None
    try:  # the requester as the staff table has them now
        authorize(db, job_actor(job), Permission.EXPORT)
    except (OrdersError, ValueError) as error:
        reason = f"Stopped: {error} (access withdrawn since {job.actor} asked for this export)"
        return ExportOutcome(_fail(db, job_id, worker_id, reason, filtered), exported=False)
    with heartbeat.holding(job_id, items=False):
        try:
            from ..export import export_orders  # pyarrow and numpy load only when an export runs

            stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
            destination = settings.exports_dir / f"orders-job-{job_id}-{stamp}.csv"
            result = export_orders(
                db,
                destination,
                actor=job_actor(job),
                job_id=job_id,
                progress=_ProgressRecorder(db, job_id, worker_id),
            )
        except Exception as error:  # noqa: BLE001 - the job fails with the reason
            log.exception("job #%d: the export failed", job_id)
            message = str(error) if isinstance(error, OrdersError) else f"{type(error).__name__}: {error}"
            failed = _fail(db, job_id, worker_id, f"The export failed: {message}", filtered)
            return ExportOutcome(failed, exported=False)
        now = utcnow()
        rows = int(result.rows)
        recorded = dict(
            export_path=str(result.path),
            export_rows=rows,
            export_bytes=int(getattr(result, "bytes", 0) or 0),
            lease_owner=None,
            lease_expires_at=None,
        )
        if filtered:  # the job is done: its total is what the file holds
            recorded |= dict(
                status=JobStatus.COMPLETED.value,
                succeeded=rows,
                failed=0,
                total=rows,
                finished_at=now,
            )
        with db.write() as conn:
            if not still_held(conn, job_id, worker_id, **recorded):
                log.warning(
                    "job #%d: lost the lease during the export; leaving the job "
                    "to the worker that took it over",
                    job_id,
                )
                return ExportOutcome(0, exported=False)
            if filtered:
                return ExportOutcome(rows, exported=True)
            count = succeed_pending_items(conn, job_id, worker_id)
            # `succeeded` counted rows while the export ran; now it counts the items.
            conn.execute(update(jobs).where(jobs.c.id == job_id).values(succeeded=count))
    return ExportOutcome(count, exported=True)


class _ProgressRecorder:
    """export_orders' progress callback: the rows written so far into the job's
    `succeeded`, at most every PROGRESS_SECONDS, while this worker holds the job."""

    def __init__(self, db: Database, job_id: int, worker_id: str):
        self.db, self.job_id, self.worker_id = db, job_id, worker_id
        self._last = 0.0
        self._lock = threading.Lock()

    def __call__(self, rows: int) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._last < PROGRESS_SECONDS:
                return
            self._last = now
            with self.db.write() as conn:
                conn.execute(
                    update(jobs)
                    .where(
                        jobs.c.id == self.job_id,
                        jobs.c.lease_owner == self.worker_id,
                        jobs.c.status == JobStatus.RUNNING.value,
                    )
                    .values(succeeded=int(rows))
                )


def _fail(db: Database, job_id: int, worker_id: str, reason: str, filtered: bool) -> int:
    """The export failed: its items fail with `reason`, or, for a filtered export (no
    items), the job itself; the number of orders that failed."""
    if not filtered:
        return fail_pending_items(db, job_id, worker_id, reason)
    now = utcnow()
    with db.write() as conn:
        row = conn.execute(
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.status == JobStatus.RUNNING.value)
            .values(
                status=JobStatus.FAILED.value,
                succeeded=0,
                failed=jobs.c.total,
                error=reason[:4000],
                finished_at=now,
                lease_owner=None,
                lease_expires_at=None,
            )
            .returning(jobs.c.failed)
        ).first()
    return int(row.failed) if row is not None else 0
