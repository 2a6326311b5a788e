"""Reconciliation reports, stored: asked for as a `reconcile` job (the Reconciliation
page), or run here and now (the CLI), and read back from the database.

A report is a `reconciliation_runs` row (period, gateway, stage and progress while it
runs, what it read) and its `reconciliation_mismatches` rows. A job for it is an
ordinary job of the job engine (orders_core/jobs.py) with action `reconcile` and one
item standing for the period; the engine's worker runs `run_reconciliation_job` under
the job's lease. Every function re-reads the database, so a page's rerun shows the
report as stored. Permission: `reconcile payments with the gateway` (analyst and up).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

from sqlalchemy import func, insert, select, update

from .chunking import chunks
from .clock import utcnow
from .config import load_settings
from .db import Database
from .errors import NotFound, ValidationError
from .jobs import ITEM_PENDING, JobAction, JobStatus, JobView, _actor_role, job_queued, read_job
from .payments import GATEWAY_NAMES
from .payments.listing import GatewayLedger
from .reconciliation import (
    Mismatch,
    MismatchKind,
    Period,
    ReconciliationReport,
    reconcile,
    report_csv,
)
from .schema import job_items, jobs, reconciliation_mismatches, reconciliation_runs
from .staff import Actor, Permission, authorize

RUN_QUEUED, RUN_RUNNING, RUN_COMPLETED, RUN_FAILED = "queued", "running", "completed", "failed"
PERIOD_ITEM = "period"  # the order_number of a reconcile job's one item


@dataclasses.dataclass
class RunView:
    id: int
    job_id: int | None
    gateway: str
    period: Period
    status: str
    stage: str
    progress: float
    actor: str
    payments_checked: int
    refunds_checked: int
    gateway_charges: int
    gateway_refunds: int
    orders_checked: int
    mismatches: int
    counts: dict[str, int]  # per kind, every kind listed
    error: str | None
    created_at: dt.datetime
    finished_at: dt.datetime | None

    @property
    def finished(self) -> bool:
        return self.status in (RUN_COMPLETED, RUN_FAILED)

    @property
    def clean(self) -> bool:
        return self.status == RUN_COMPLETED and self.mismatches == 0

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "job_id": self.job_id,
            "gateway": self.gateway,
            "from": self.period.first.isoformat(),
            "to": self.period.last.isoformat(),
            "status": self.status,
            "stage": self.stage,
            "progress": round(self.progress, 4),
            "actor": self.actor,
            "clean": self.clean,
            "counts": self.counts,
            "mismatches": self.mismatches,
            "checked": {
                "payments": self.payments_checked,
                "refunds": self.refunds_checked,
                "gateway_charges": self.gateway_charges,
                "gateway_refunds": self.gateway_refunds,
                "orders": self.orders_checked,
            },
            "error": self.error,
            "created_at": self.created_at.isoformat(sep=" ", timespec="seconds"),
            "finished_at": self.finished_at.isoformat(sep=" ", timespec="seconds")
            if self.finished_at
            else None,
        }


def gateway_name(gateway: str | None) -> str:
    """`gateway` checked, or the configured one (ORDERS_PAYMENT_GATEWAY)."""
    name = (gateway or load_settings().gateway).strip().lower()
    if name not in GATEWAY_NAMES:
        raise ValidationError(
            f"Unknown payment gateway {name[:40]!r}; use one of {', '.join(GATEWAY_NAMES)}."
        )
    return name


def _new_run(conn, *, job_id: int | None, gateway: str, period: Period, actor: str, status: str) -> int:
    return int(
        conn.execute(
            insert(reconciliation_runs).values(
                job_id=job_id,
                gateway=gateway,
                period_from=period.first,
                period_to=period.last,
                status=status,
                stage="Queued" if status == RUN_QUEUED else "Starting",
                progress=0.0,
                actor=actor,
                payments_checked=0,
                refunds_checked=0,
                gateway_charges=0,
                gateway_refunds=0,
                orders_checked=0,
                mismatches=0,
                created_at=utcnow(),
            )
        ).inserted_primary_key[0]
    )


# -- asking ---------------------------------------------------------------------------------
def start_reconciliation(
    db: Database, actor: Actor, period: Period, *, gateway: str | None = None
) -> RunView:
    """Queue a `reconcile` job for `period` against `gateway` (the configured one by
    default); returns its report, queued, at once. A worker runs it."""
    actor = authorize(db, actor, Permission.RECONCILE)
    name = gateway_name(gateway)
    now = utcnow()
    with db.write() as conn:
        job_id = conn.execute(
            insert(jobs).values(
                action=JobAction.RECONCILE.value,
                status=JobStatus.QUEUED.value,
                actor=actor.label,
                actor_role=_actor_role(actor),
                selection=f"Reconcile {name} payments and refunds, {period.describe()}",
                reason="",
                total=1,
                succeeded=0,
                failed=0,
                created_at=now,
                cancel_requested=False,
            )
        ).inserted_primary_key[0]
        conn.execute(
            insert(job_items).values(
                job_id=job_id, seq=1, order_id=0, order_number=PERIOD_ITEM, status=ITEM_PENDING, attempts=0
            )
        )
        run_id = _new_run(
            conn, job_id=job_id, gateway=name, period=period, actor=actor.label, status=RUN_QUEUED
        )
    job_queued.set()
    return read_run(db, run_id)


def reconcile_now(
    db: Database, actor: Actor, period: Period, ledger: GatewayLedger
) -> tuple[RunView, ReconciliationReport]:
    """Reconcile here and now (the CLI) and store the report, as a job would."""
    actor = authorize(db, actor, Permission.RECONCILE)
    with db.write() as conn:
        run_id = _new_run(
            conn, job_id=None, gateway=ledger.name, period=period, actor=actor.label, status=RUN_RUNNING
        )
    report = _run(db, run_id, ledger, period)
    return read_run(db, run_id), report


# -- running (the job engine calls this under the job's lease) ----------------------------------
def run_reconciliation_job(
    db: Database,
    job_id: int,
    ledger_named: Callable[[str], GatewayLedger],
) -> ReconciliationReport:
    """Run job `job_id`'s reconciliation and store its report. `ledger_named` gives the
    gateway by name; raises what the reading raised (the engine fails the job with it)."""
    run = run_for_job(db, job_id)
    with db.write() as conn:
        conn.execute(
            update(reconciliation_runs)
            .where(reconciliation_runs.c.id == run.id)
            .values(status=RUN_RUNNING, stage="Starting", progress=0.0, error=None)
        )
    return _run(db, run.id, ledger_named(run.gateway), run.period)


def _run(db: Database, run_id: int, ledger: GatewayLedger, period: Period) -> ReconciliationReport:
    def progress(stage: str, fraction: float) -> None:
        with db.write() as conn:
            conn.execute(
                update(reconciliation_runs)
                .where(reconciliation_runs.c.id == run_id)
                .values(stage=stage[:200], progress=max(0.0, min(1.0, fraction)))
            )

    try:
        report = reconcile(db, ledger, period, progress=progress)
    except BaseException as error:
        fail_run(db, run_id, f"{type(error).__name__}: {error}")
        raise
    store_report(db, run_id, report)
    return report


def store_report(db: Database, run_id: int, report: ReconciliationReport) -> None:
    """The report's rows (replacing any of an earlier attempt) and counts, completed."""
    rows = [
        {
            "run_id": run_id,
            "seq": seq,
            "kind": m.kind.value,
            "order_number": m.order_number,
            "gateway_id": m.gateway_id,
            "ours_amount": m.ours_amount,
            "ours_currency": m.ours_currency,
            "ours_status": m.ours_status,
            "theirs_amount": m.theirs_amount,
            "theirs_currency": m.theirs_currency,
            "theirs_status": m.theirs_status,
            "detail": m.detail,
        }
        for seq, m in enumerate(report.mismatches, start=1)
    ]
    with db.write() as conn:
        conn.execute(reconciliation_mismatches.delete().where(reconciliation_mismatches.c.run_id == run_id))
        for chunk in chunks(rows, 1000):
            conn.execute(insert(reconciliation_mismatches), chunk)
        conn.execute(
            update(reconciliation_runs)
            .where(reconciliation_runs.c.id == run_id)
            .values(
                status=RUN_COMPLETED,
                stage=f"Done: {len(rows):,} mismatch{'es' if len(rows) != 1 else ''}",
                progress=1.0,
                payments_checked=report.payments_checked,
                refunds_checked=report.refunds_checked,
                gateway_charges=report.gateway_charges,
                gateway_refunds=report.gateway_refunds,
                orders_checked=report.orders_checked,
                mismatches=len(rows),
                error=None,
                finished_at=utcnow(),
            )
        )


def fail_run(db: Database, run_id: int, error: str) -> None:
    with db.write() as conn:
        conn.execute(
            update(reconciliation_runs)
            .where(reconciliation_runs.c.id == run_id)
            .values(status=RUN_FAILED, stage="Failed", error=error[:4000], finished_at=utcnow())
        )


# -- reading ----------------------------------------------------------------------------------
def _counts(conn, run_ids: list[int]) -> dict[int, dict[str, int]]:
    counts = {run_id: {kind.value: 0 for kind in MismatchKind} for run_id in run_ids}
    if run_ids:
        for run_id, kind, n in conn.execute(
            select(reconciliation_mismatches.c.run_id, reconciliation_mismatches.c.kind, func.count())
            .where(reconciliation_mismatches.c.run_id.in_(run_ids))
            .group_by(reconciliation_mismatches.c.run_id, reconciliation_mismatches.c.kind)
        ):
            counts[run_id][kind] = int(n)
    return counts


def _view(row, counts: dict[str, int]) -> RunView:
    return RunView(
        id=row.id,
        job_id=row.job_id,
        gateway=row.gateway,
        period=Period(row.period_from, row.period_to),
        status=row.status,
        stage=row.stage,
        progress=float(row.progress or 0.0),
        actor=row.actor,
        payments_checked=row.payments_checked,
        refunds_checked=row.refunds_checked,
        gateway_charges=row.gateway_charges,
        gateway_refunds=row.gateway_refunds,
        orders_checked=row.orders_checked,
        mismatches=row.mismatches,
        counts=counts,
        error=row.error,
        created_at=row.created_at,
        finished_at=row.finished_at,
    )


def read_run(db: Database, run_id: int) -> RunView:
    """A report without the permission check (for the services and the engine)."""
    with db.read() as conn:
        row = conn.execute(
            select(reconciliation_runs).where(reconciliation_runs.c.id == run_id)
        ).one_or_none()
        if row is None:
            raise NotFound(f"No reconciliation #{run_id}.")
        return _view(row, _counts(conn, [row.id])[row.id])


def run_for_job(db: Database, job_id: int) -> RunView:
    with db.read() as conn:
        run_id = conn.execute(
            select(reconciliation_runs.c.id).where(reconciliation_runs.c.job_id == job_id)
        ).scalar_one_or_none()
    if run_id is None:
        raise NotFound(f"Job #{job_id} has no reconciliation.")
    return read_run(db, run_id)


def get_run(db: Database, actor: Actor, run_id: int) -> RunView:
    authorize(db, actor, Permission.RECONCILE)
    return read_run(db, run_id)


def job_of_run(db: Database, actor: Actor, run: RunView) -> JobView | None:
    """The job that runs (or ran) the report; None for the CLI's."""
    authorize(db, actor, Permission.RECONCILE)
    return None if run.job_id is None else read_job(db, run.job_id)


def list_runs(db: Database, actor: Actor, *, limit: int = 20) -> list[RunView]:
    """The most recent reports, newest first."""
    authorize(db, actor, Permission.RECONCILE)
    limit = max(1, min(int(limit), 200))
    with db.read() as conn:
        rows = conn.execute(
            select(reconciliation_runs).order_by(reconciliation_runs.c.id.desc()).limit(limit)
        ).all()
        counts = _counts(conn, [row.id for row in rows])
    return [_view(row, counts[row.id]) for row in rows]


def run_mismatches(db: Database, actor: Actor, run_id: int, *, limit: int | None = None) -> list[Mismatch]:
    """A stored report's rows, in the report's order."""
    authorize(db, actor, Permission.RECONCILE)
    query = (
        select(reconciliation_mismatches)
        .where(reconciliation_mismatches.c.run_id == run_id)
        .order_by(reconciliation_mismatches.c.seq)
    )
    if limit is not None:
        query = query.limit(max(0, int(limit)))
    with db.read() as conn:
        return [
            Mismatch(
                MismatchKind(r.kind),
                r.order_number,
                r.gateway_id,
                r.ours_amount,
                r.ours_currency,
                r.ours_status,
                r.theirs_amount,
                r.theirs_currency,
                r.theirs_status,
                r.detail,
            )
            for r in conn.execute(query)
        ]


def run_csv(db: Database, actor: Actor, run_id: int) -> bytes:
    """A stored report as CSV (orders_core.reconciliation.report_csv)."""
    return report_csv(run_mismatches(db, actor, run_id))


__all__ = [
    "RunView",
    "gateway_name",
    "start_reconciliation",
    "reconcile_now",
    "run_reconciliation_job",
    "store_report",
    "fail_run",
    "read_run",
    "run_for_job",
    "get_run",
    "job_of_run",
    "list_runs",
    "run_mismatches",
    "run_csv",
]
