"""Running an export job: the whole job is one unit of work, held by the job's lease.

The file is written under ORDERS_DATA_DIR/exports; the job records it only while this
worker still holds the lease, so a worker that lost it to another (its heartbeat
stopped long enough) leaves the job to that one rather than recording it twice.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

from sqlalchemy import select, update

from ..clock import utcnow
from ..config import Settings
from ..db import Database
from ..errors import OrdersError
from ..jobs import ITEM_PENDING, ITEM_SUCCEEDED, JobStatus, job_actor
from ..schema import job_items, jobs
from ..staff import Permission, authorize
from .claims import Heartbeat, fail_pending_items

log = logging.getLogger("orders_core.worker")


class ExportOutcome(NamedTuple):
    items: int  # items recorded: succeeded when exported, else failed (0: lease lost)
    exported: bool


def run_export_job(
    db: Database, worker_id: str, job_id: int, settings: Settings, heartbeat: Heartbeat
) -> ExportOutcome:
    """Write export job `job_id`'s file and record it (the job's lease is this
    worker's). A failure fails the job's items with the reason."""
    with db.read() as conn:
        job = conn.execute(
            select(jobs.c.id, jobs.c.actor, jobs.c.actor_role).where(jobs.c.id == job_id)
        ).one()
    try:  # the requester as the staff table has them now
        authorize(db, job_actor(job), Permission.EXPORT)
    except (OrdersError, ValueError) as error:
        reason = f"Stopped: {error} (access withdrawn since {job.actor} asked for this export)"
        return ExportOutcome(fail_pending_items(db, job_id, worker_id, reason), exported=False)
    with heartbeat.holding(job_id, items=False):
        try:
            from ..export import export_orders  # pyarrow and numpy load only when an export runs

            stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
            destination = settings.exports_dir / f"orders-job-{job_id}-{stamp}.csv"
            result = export_orders(db, destination, actor=job_actor(job), job_id=job_id)
        except Exception as error:  # noqa: BLE001 - the job fails with the reason
            log.exception("job #%d: the export failed", job_id)
            message = str(error) if isinstance(error, OrdersError) else f"{type(error).__name__}: {error}"
            failed = fail_pending_items(db, job_id, worker_id, f"The export failed: {message}")
            return ExportOutcome(failed, exported=False)
        now = utcnow()
        with db.write() as conn:
            still_mine = conn.execute(
                update(jobs)
                .where(
                    jobs.c.id == job_id,
                    jobs.c.lease_owner == worker_id,
                    jobs.c.status == JobStatus.RUNNING.value,
                )
                .values(
                    export_path=str(result.path),
                    export_rows=int(result.rows),
                    export_bytes=int(getattr(result, "bytes", 0) or 0),
                    lease_owner=None,
                    lease_expires_at=None,
                )
            ).rowcount
            if not still_mine:
                log.warning(
                    "job #%d: lost the lease during the export; leaving the job "
                    "to the worker that took it over",
                    job_id,
                )
                return ExportOutcome(0, exported=False)
            count = int(
                conn.execute(
                    update(job_items)
                    .where(job_items.c.job_id == job_id, job_items.c.status == ITEM_PENDING)
                    .values(
                        status=ITEM_SUCCEEDED,
                        worker=worker_id,
                        attempts=job_items.c.attempts + 1,
                        finished_at=now,
                    )
                ).rowcount
            )
            conn.execute(update(jobs).where(jobs.c.id == job_id).values(succeeded=jobs.c.succeeded + count))
    return ExportOutcome(count, exported=True)
