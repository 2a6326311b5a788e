"""Running a reconcile job: the whole job is one unit of work under the job's lease,
like an export (orders_core/reconciliation_jobs.py reads both sides and stores the
report). The requester is checked again first; the one item stands for the period
and is recorded succeeded or failed with the reason, which closes the job.
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

from sqlalchemy import select, update

from ..db import Database
from ..errors import OrdersError
from ..jobs import job_actor
from ..reconciliation_jobs import fail_run, run_for_job, run_reconciliation_job
from ..schema import jobs
from ..staff import Permission, authorize
from .claims import Heartbeat, fail_pending_items, still_held, succeed_pending_items

log = logging.getLogger("orders_core.worker")


class ReconcileOutcome(NamedTuple):
    items: int  # items recorded (0: the lease was lost to another worker)
    reconciled: bool


def run_reconcile_job(
    db: Database, worker_id: str, job_id: int, gateways: Any, heartbeat: Heartbeat
) -> ReconcileOutcome:
    """Reconcile job `job_id`'s period against its gateway (from `gateways`, the
    worker's paced ones) and record the outcome while this worker holds the lease."""
    with db.read() as conn:
        job = conn.execute(
            select(jobs.c.id, jobs.c.actor, jobs.c.actor_role).where(jobs.c.id == job_id)
        ).one()
    try:  # the requester as the staff table has them now
        authorize(db, job_actor(job), Permission.RECONCILE)
    except (OrdersError, ValueError) as error:
        reason = f"Stopped: {error} (access withdrawn since {job.actor} asked for this reconciliation)"
        _fail_run_of(db, job_id, reason)
        return ReconcileOutcome(fail_pending_items(db, job_id, worker_id, reason), reconciled=False)
    with heartbeat.holding(job_id, items=False):
        try:
            report = run_reconciliation_job(db, job_id, gateways.named)
        except Exception as error:  # noqa: BLE001 - the job fails with the reason
            log.exception("job #%d: the reconciliation failed", job_id)
            message = str(error) if isinstance(error, OrdersError) else f"{type(error).__name__}: {error}"
            failed = fail_pending_items(db, job_id, worker_id, f"The reconciliation failed: {message}")
            return ReconcileOutcome(failed, reconciled=False)
        with db.write() as conn:
            if not still_held(conn, job_id, worker_id, lease_owner=None, lease_expires_at=None):
                log.warning(
                    "job #%d: lost the lease during the reconciliation; leaving it to the new holder", job_id
                )
                return ReconcileOutcome(0, reconciled=False)
            count = succeed_pending_items(
                conn, job_id, worker_id, reason=f"{len(report.mismatches):,} mismatches"
            )
            conn.execute(update(jobs).where(jobs.c.id == job_id).values(succeeded=jobs.c.succeeded + count))
    return ReconcileOutcome(count, reconciled=True)


def _fail_run_of(db: Database, job_id: int, reason: str) -> None:
    try:
        fail_run(db, run_for_job(db, job_id).id, reason)
    except OrdersError:
        pass  # a job without its report row: the job's own failure says it all
