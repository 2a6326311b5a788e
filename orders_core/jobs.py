"""Bulk jobs: mass Export, Fulfill, Cancel and Return, asked for here and run by a
worker (orders_core/job_engine/).

Asking (`enqueue`) checks the permission, freezes the selection into one job item
per order (set-based: INSERT ... SELECT for filters) and returns at once; nothing
is moved yet. Eligibility is checked twice: `preflight` tells the user beforehand,
from the same table of legal mass moves (status.BULK_SOURCE_STATUSES), how many
orders are eligible and why the others are not; at run time every item goes through
lifecycle.apply_moves, so an order that someone changed meanwhile fails with the
reason and the others go on.

Every function here re-reads the database: the job's state lives in the `jobs` and
`job_items` tables, never in a page's session.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import threading

from sqlalchemy import BigInteger, bindparam, case, exists, func, insert, literal, select, update
from sqlalchemy.dialects.postgresql import ARRAY

from .chunking import ID_LIST_LIMIT, chunks
from .clock import utcnow
from .db import Database
from .dispute_queries import disputed_condition
from .errors import NotFound, OrdersError, ValidationError
from .job_failures import RetryPlan, retryable_condition
from .job_failures import retry_plan as _retry_plan
from .money import format_money
from .order_numbers import parse_order_number
from .queries import OrderFilters, iso
from .refund_rules import refundable_amount_sql
from .schema import job_items, jobs, orders
from .staff import ACTION_PERMISSIONS, Actor, ActorKind, Permission, Role, authorize
from .status import BULK_SOURCE_STATUSES, Action, IllegalMove, Status, refunds_on
from .validation import clean_text

MAX_ORDER_NUMBERS = 1_000_000


class JobAction(str, enum.Enum):
    EXPORT = "export"
    FULFILL = "fulfill"
    CANCEL = "cancel"
    RETURN = "return"
    # Not over a selection of orders: a period's payments against the gateway's
    # (orders_core/reconciliation_jobs.py asks for it; one job item stands for the period).
    RECONCILE = "reconcile"

    @property
    def label(self) -> str:
        return self.value.capitalize()

    @property
    def move(self) -> Action | None:
        """The status move (status.Action) this job makes; None for an export or a reconciliation."""
        return None if self in (JobAction.EXPORT, JobAction.RECONCILE) else Action(self.value)

    @property
    def permission(self) -> Permission:
        if self is JobAction.RECONCILE:
            return Permission.RECONCILE
        return Permission.EXPORT if self is JobAction.EXPORT else ACTION_PERMISSIONS[self.move]

    @property
    def selects_orders(self) -> bool:
        """Asked for over a selection of orders (bulk), rather than over a period."""
        return self is not JobAction.RECONCILE

    @classmethod
    def parse(cls, value) -> JobAction:
        if isinstance(value, (JobAction, Action)):
            value = value.value
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            raise ValidationError(
                f"Unknown bulk action {str(value)[:40]!r}; use one of "
                + ", ".join(a.value for a in cls)
                + "."
            ) from None


class JobStatus(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    COMPLETED_WITH_FAILURES = "completed_with_failures"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()


# Jobs run as one unit under the job's own lease (no chunks of items).
WHOLE_JOB_ACTIONS = (JobAction.EXPORT.value, JobAction.RECONCILE.value)
ACTIVE_STATUSES = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)
FINISHED_STATUSES = frozenset(s.value for s in JobStatus) - set(ACTIVE_STATUSES)
ITEM_PENDING, ITEM_SUCCEEDED, ITEM_FAILED = "pending", "succeeded", "failed"

# Set by enqueue so that a worker in this process starts at once instead of at its
# next poll (workers in other processes poll).
job_queued = threading.Event()


# -- read models ------------------------------------------------------------------------
@dataclasses.dataclass
class JobView:
    id: int
    action: str
    status: str
    actor: str
    selection: str
    total: int
    succeeded: int
    failed: int
    pending: int
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    export_path: str | None
    export_rows: int | None
    export_bytes: int | None
    error: str | None
    retry_of: int | None
    cancel_requested: bool
    reason: str = ""
    # The worker holding the job's lease, and until when (naive UTC).
    lease_owner: str | None = None
    lease_expires_at: dt.datetime | None = None

    @property
    def progress(self) -> float:
        if self.total <= 0:
            return 1.0 if self.finished else 0.0
        return min(1.0, (self.succeeded + self.failed) / self.total)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def status_label(self) -> str:
        return JobStatus(self.status).label

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "action": self.action,
            "status": self.status,
            "actor": self.actor,
            "selection": self.selection,
            "reason": self.reason,
            "total": self.total,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "pending": self.pending,
            "progress": round(self.progress, 4),
            "finished": self.finished,
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "export_path": self.export_path,
            "export_rows": self.export_rows,
            "export_bytes": self.export_bytes,
            "error": self.error,
            "retry_of": self.retry_of,
            "cancel_requested": self.cancel_requested,
            "lease_owner": self.lease_owner,
            "lease_expires_at": iso(self.lease_expires_at),
        }


def _view(row) -> JobView:
    return JobView(
        id=row.id,
        action=row.action,
        status=row.status,
        actor=row.actor,
        selection=row.selection or "",
        total=row.total,
        succeeded=row.succeeded,
        failed=row.failed,
        pending=max(0, row.total - row.succeeded - row.failed),
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        export_path=row.export_path,
        export_rows=row.export_rows,
        export_bytes=row.export_bytes,
        error=row.error,
        retry_of=row.retry_of,
        cancel_requested=bool(row.cancel_requested),
        reason=row.reason or "",
        lease_owner=row.lease_owner,
        lease_expires_at=row.lease_expires_at,
    )


def list_jobs(db: Database, *, actor: Actor, limit: int = 50) -> list[JobView]:
    """The most recent jobs, newest first."""
    authorize(db, actor, Permission.VIEW)
    limit = max(1, min(int(limit), 1000))
    with db.read() as conn:
        return [_view(r) for r in conn.execute(select(jobs).order_by(jobs.c.id.desc()).limit(limit))]


def get_job(db: Database, job_id: int, *, actor: Actor) -> JobView:
    authorize(db, actor, Permission.VIEW)
    return read_job(db, job_id)


def read_job(db: Database, job_id: int) -> JobView:
    """get_job without the permission check: for the services and the worker, which
    act on a job they have authorized already."""
    job_id = _job_id(job_id)
    with db.read() as conn:
        row = conn.execute(select(jobs).where(jobs.c.id == job_id)).one_or_none()
    if row is None:
        raise NotFound(f"No job #{job_id}.")
    return _view(row)


def job_failures(db: Database, job_id: int, *, actor: Actor, limit: int | None = None) -> list[dict]:
    """The failed orders of a job, in selection order: [{order, reason}]."""
    authorize(db, actor, Permission.VIEW)
    job_id = _job_id(job_id)
    query = (
        select(job_items.c.order_number, job_items.c.reason)
        .where(job_items.c.job_id == job_id, job_items.c.status == ITEM_FAILED)
        .order_by(job_items.c.seq)
    )
    if limit is not None:
        query = query.limit(max(0, int(limit)))
    with db.read() as conn:
        if conn.execute(select(jobs.c.id).where(jobs.c.id == job_id)).first() is None:
            raise NotFound(f"No job #{job_id}.")
        return [{"order": r.order_number, "reason": r.reason or ""} for r in conn.execute(query)]


def _job_id(value) -> int:
    if isinstance(value, bool):
        raise ValidationError("A job id is a whole number.")
    try:
        job_id = int(str(value).strip().lstrip("#"))
    except (TypeError, ValueError):
        raise ValidationError(f"{str(value)[:40]!r} is not a job id.") from None
    if not 1 <= job_id <= 2**31 - 1:
        raise NotFound(f"No job #{job_id}.")
    return job_id


# -- preflight ------------------------------------------------------------------------------
@dataclasses.dataclass
class Preflight:
    action: str
    requested: int  # distinct orders in the selection
    duplicates: int  # order numbers given more than once, counted once
    eligible: int
    ineligible: dict[str, int]  # reason -> orders, e.g. "Fulfilled — Cancel applies to Paid orders only"
    refund_totals: dict[str, int]  # currency -> minor units refunded by the eligible orders
    # Order numbers given that match no order (at most 20 shown; all counted in ineligible).
    unknown: list[str] = dataclasses.field(default_factory=list)

    def summary(self) -> str:
        action = JobAction(self.action)
        if self.requested == 0:
            return "Select at least one order: the selection is empty."
        if self.eligible == self.requested:
            head = (
                f"{action.label}: all {self.requested:,} selected orders are eligible"
                if self.requested > 1
                else f"{action.label}: the selected order is eligible"
            )
        else:
            reasons = "; ".join(f"{n:,} {reason}" for reason, n in self.ineligible.items())
            others = self.requested - self.eligible
            head = (
                f"{action.label}: {self.eligible:,} of {self.requested:,} selected "
                f"order{'s' if self.requested != 1 else ''} "
                f"{'are' if self.eligible != 1 else 'is'} eligible; {others:,} "
                f"{'are' if others != 1 else 'is'} not ({reasons})"
            )
        if self.refund_totals:
            head += ", refunding " + " and ".join(
                format_money(amount, currency) for currency, amount in self.refund_totals.items()
            )
        parts = [head]
        if self.duplicates:
            parts.append(
                f"{self.duplicates:,} duplicate order number"
                f"{'s' if self.duplicates != 1 else ''} counted once"
            )
        if self.unknown:
            parts.append("unknown order numbers must be removed before queueing")
        return "; ".join(parts) + "."

    def as_dict(self) -> dict:
        return dataclasses.asdict(self) | {"summary": self.summary()}


NOT_FOUND_REASON = "No such order number"
# A mass Fulfill skips disputed orders: each needs a person's yes on its own page.
DISPUTED_REASON = "Disputed — fulfil it from its own page, after confirming"


def ineligible_reason(status: Status, action: JobAction) -> str | None:
    """Why an order in `status` is not eligible for the mass `action` (None: eligible)."""
    move = action.move
    if move is None:
        return None
    allowed = BULK_SOURCE_STATUSES[move]
    if Status(status) in allowed:
        return None
    # The move table's own wording: "Fulfilled — Cancel applies to Paid orders only".
    refusal = IllegalMove("", status, move, allowed)
    return f"{refusal.status.label} — {refusal.reason}"


def preflight(
    db: Database,
    actor: Actor,
    action,
    *,
    order_numbers: list[str] | None = None,
    filters: OrderFilters | None = None,
) -> Preflight:
    """What `enqueue` would queue and what would happen to it, without queueing."""
    action = _bulk_action(action)
    actor = authorize(db, actor, action.permission)
    ids, duplicates, unknown, use_filters = _selection(order_numbers, filters)
    # Two grouped queries: orders per status (an index-only scan at a million orders),
    # and what the refunding moves would pay back per currency (the eligible rows only).
    refunding = sorted(
        s.value
        for s in Status
        if ineligible_reason(s, action) is None and action.move is not None and refunds_on(s, action.move)
    )
    by_status: dict[str, int] = {}
    refunds: dict[str, int] = {}
    disputed = [0]  # eligible by status, but disputed (a mass Fulfill skips them)
    outstanding = func.coalesce(
        func.sum(refundable_amount_sql(orders.c.total_amount, orders.c.refunded_amount)), 0
    )

    def tally(conn, where) -> None:
        for status, count in conn.execute(
            select(orders.c.status, func.count()).where(*where).group_by(orders.c.status)
        ):
            by_status[status] = by_status.get(status, 0) + count
        if refunding:
            for currency, amount in conn.execute(
                select(orders.c.currency, outstanding)
                .where(*where, orders.c.status.in_(refunding))
                .group_by(orders.c.currency)
            ):
                refunds[currency] = refunds.get(currency, 0) + int(amount or 0)
        if action.move == Action.FULFILL:
            sources = [s.value for s in BULK_SOURCE_STATUSES[Action.FULFILL]]
            disputed[0] += conn.execute(
                select(func.count())
                .select_from(orders)
                .where(*where, orders.c.status.in_(sources), disputed_condition())
            ).scalar_one()

    with db.read() as conn:
        if use_filters:
            tally(conn, filters.conditions(dialect=conn.dialect.name))
        else:
            known: set[int] = set()
            for chunk in chunks(sorted(ids), ID_LIST_LIMIT):
                tally(conn, [orders.c.id.in_(chunk)])
                known.update(conn.execute(select(orders.c.id).where(orders.c.id.in_(chunk))).scalars())
            unknown += [number for order_id, number in ids.items() if order_id not in known]
    eligible, ineligible = 0, {}
    for status, count in sorted(by_status.items()):
        reason = ineligible_reason(Status(status), action)
        if reason:
            ineligible[reason] = ineligible.get(reason, 0) + count
        else:
            eligible += count
    if disputed[0]:
        eligible -= disputed[0]
        ineligible[DISPUTED_REASON] = disputed[0]
    if unknown:
        ineligible[NOT_FOUND_REASON] = len(unknown)
    requested = sum(by_status.values()) + len(unknown)
    ineligible = dict(sorted(ineligible.items(), key=lambda kv: (-kv[1], kv[0])))
    refunds = {currency: amount for currency, amount in sorted(refunds.items()) if amount > 0}
    return Preflight(action.value, requested, duplicates, eligible, ineligible, refunds, unknown=unknown[:20])


def _selection(order_numbers, filters):
    """(ids {order id: number as given}, duplicates, unparseable numbers, use filters)."""
    if order_numbers is not None and filters is not None:
        raise ValidationError("Select orders either by number or by filters, not both.")
    if order_numbers is None:
        if filters is None:
            raise ValidationError("Select at least one order: give order numbers or filters.")
        return {}, 0, [], True
    if isinstance(order_numbers, str):
        order_numbers = [order_numbers]
    numbers = [str(n).strip() for n in order_numbers if str(n).strip()]
    if len(numbers) > MAX_ORDER_NUMBERS:
        raise ValidationError(f"At most {MAX_ORDER_NUMBERS:,} order numbers at once; use filters for more.")
    ids: dict[int, str] = {}
    unknown: list[str] = []
    duplicates = 0
    seen_unknown = set()
    for number in numbers:
        order_id = parse_order_number(number)
        if order_id is None or order_id > 2**31 - 1:
            key = number.upper()
            if key in seen_unknown:
                duplicates += 1
            else:
                seen_unknown.add(key)
                unknown.append(number[:40])
            continue
        if order_id in ids:
            duplicates += 1
        else:
            ids[order_id] = number
    return ids, duplicates, unknown, False


# -- asking for a job -----------------------------------------------------------------------
# Mass moves that refund customers: ops write down why, once for the whole job; it is
# kept on the job and in each order's timeline note (and refund), as a single move's is.
REASON_REQUIRED = frozenset({JobAction.CANCEL, JobAction.RETURN})


def reason_problem(action, reason: str) -> str | None:
    """Why `reason` will not do for a mass `action` from the pages (None: it will)."""
    action = JobAction.parse(action)
    if action in REASON_REQUIRED and not str(reason or "").strip():
        return f"Give a reason for this mass {action.label}: it goes in each order's timeline."
    return None


def enqueue(
    db: Database,
    actor: Actor,
    action,
    *,
    order_numbers: list[str] | None = None,
    filters: OrderFilters | None = None,
    selection_label: str = "",
    reason: str = "",
) -> JobView:
    """Queue a job of `action` over the selection, frozen now; returns it at once.

    Orders that are not eligible are queued too and fail at run time with the reason
    (`preflight` says so beforehand). Unknown order numbers and an empty selection are
    refused."""
    action = _bulk_action(action)
    actor = authorize(db, actor, action.permission)
    reason = clean_text(reason, "Reason", max_length=1000, required=False, multiline=True)
    label = clean_text(selection_label, "Selection", max_length=2000, required=False, multiline=True)
    ids, duplicates, unparsed, use_filters = _selection(order_numbers, filters)
    if not use_filters and not ids and not unparsed:
        raise ValidationError("Select at least one order: no order numbers were given.")
    now = utcnow()
    role = _actor_role(actor)
    with db.write() as conn:
        job_id = conn.execute(
            insert(jobs).values(
                action=action.value,
                status=JobStatus.QUEUED.value,
                actor=actor.label,
                actor_role=role,
                selection="",
                reason=reason,
                total=0,
                succeeded=0,
                failed=0,
                created_at=now,
                cancel_requested=False,
            )
        ).inserted_primary_key[0]
        if use_filters and action is JobAction.EXPORT:  # no job items: filters + id bound
            from .export_selection import freeze_filtered_export

            total = freeze_filtered_export(conn, job_id, filters)
            if total == 0:
                raise ValidationError(f"Select at least one order: no orders match ({filters.describe()}).")
            selection = label or f"Orders matching: {filters.describe()}"
        elif use_filters:
            total = _freeze_filtered(conn, job_id, filters)
            if total == 0:
                raise ValidationError(f"Select at least one order: no orders match ({filters.describe()}).")
            selection = label or f"Orders matching: {filters.describe()}"
        else:
            total, first = _freeze_listed(conn, job_id, ids, unparsed)
            shown = ", ".join(first)
            more = f" and {len(ids) - 5:,} more" if len(ids) > 5 else ""
            selection = label or (f"{len(ids):,} order number{'s' if len(ids) != 1 else ''}: {shown}{more}")
            if duplicates:
                selection += f" ({duplicates:,} duplicate{'s' if duplicates != 1 else ''} counted once)"
        conn.execute(update(jobs).where(jobs.c.id == job_id).values(total=total, selection=selection))
        row = conn.execute(select(jobs).where(jobs.c.id == job_id)).one()
    job_queued.set()
    return _view(row)


def _bulk_action(value) -> JobAction:
    action = JobAction.parse(value)
    if not action.selects_orders:
        raise ValidationError(
            f"{action.label} covers a period, not a selection of orders: use "
            "`python -m orders_core reconcile` or the Reconciliation page."
        )
    return action


def _actor_role(actor: Actor) -> str:
    if actor.kind == ActorKind.SYSTEM:
        return "system"
    if actor.role is None:
        raise OrdersError(f"{actor.label} has no staff role and cannot run bulk jobs.")
    return Role(actor.role).value


def job_actor(job) -> Actor:
    """The actor a job acts as: who asked, with the role checked when they asked."""
    role = getattr(job, "actor_role", None)
    if role == "system" or role is None and job.actor == "system":
        return Actor(email=job.actor, kind=ActorKind.SYSTEM)
    if role is None:
        raise OrdersError(f"Job #{job.id} does not record the role of {job.actor}.")
    return Actor(email=job.actor, role=Role(role))


def _freeze_filtered(conn, job_id: int, filters: OrderFilters) -> int:
    """INSERT ... SELECT: one job item per matching order, in id order."""
    source = select(
        literal(job_id), orders.c.id, orders.c.id, orders.c.number, literal(ITEM_PENDING), literal(0)
    ).where(*filters.conditions(dialect=conn.dialect.name))
    result = conn.execute(
        insert(job_items).from_select(
            ["job_id", "seq", "order_id", "order_number", "status", "attempts"], source
        )
    )
    total = result.rowcount
    if total is None or total < 0:
        total = conn.execute(
            select(func.count()).select_from(job_items).where(job_items.c.job_id == job_id)
        ).scalar_one()
    return total


def _freeze_listed(conn, job_id: int, ids: dict[int, str], unparsed: list[str]) -> tuple[int, list[str]]:
    """One job item per listed order, in the order given, in one INSERT ... SELECT from
    the ids sent as one parameter (no Python row per order); (how many, the first five
    order numbers). Refused, naming them, if any order is unknown."""
    listed = _listed_ids(conn.dialect.name, list(ids))
    source = select(
        literal(job_id), listed.c.seq, orders.c.id, orders.c.number, literal(ITEM_PENDING), literal(0)
    ).join_from(listed, orders, orders.c.id == listed.c.order_id)
    inserted = 0
    if ids and not unparsed:
        inserted = conn.execute(
            insert(job_items).from_select(
                ["job_id", "seq", "order_id", "order_number", "status", "attempts"], source
            )
        ).rowcount
        if inserted is None or inserted < 0:  # psycopg reports no count for INSERT ... SELECT
            inserted = conn.execute(
                select(func.count()).select_from(job_items).where(job_items.c.job_id == job_id)
            ).scalar_one()
    if unparsed or inserted != len(ids):
        found: set[int] = set()
        for chunk in chunks(list(ids), ID_LIST_LIMIT):
            found.update(conn.execute(select(orders.c.id).where(orders.c.id.in_(chunk))).scalars())
        missing = unparsed + [number for order_id, number in ids.items() if order_id not in found]
        shown = ", ".join(repr(n) if parse_order_number(n) is None else n for n in missing[:10])
        more = f" and {len(missing) - 10:,} more" if len(missing) > 10 else ""
        raise NotFound(f"No such order{'s' if len(missing) != 1 else ''}: {shown}{more}. Nothing was queued.")
    first = conn.execute(
        select(job_items.c.order_number)
        .where(job_items.c.job_id == job_id)
        .order_by(job_items.c.seq)
        .limit(5)
    ).scalars()
    return inserted, list(first)


def _listed_ids(dialect: str, order_ids: list[int]):
    """The ids as a table (seq, order_id), seq counting from 1 in the order given:
    PostgreSQL unnests one array parameter, SQLite reads one JSON array parameter."""
    if dialect == "postgresql":
        array = bindparam("listed_ids", order_ids, type_=ARRAY(BigInteger))
        table = func.unnest(array).table_valued("order_id", with_ordinality="seq").render_derived()
        return select(table.c.seq, table.c.order_id).subquery("listed")
    each = func.json_each(bindparam("listed_ids", json.dumps(order_ids))).table_valued("key", "value")
    return select((each.c.key + 1).label("seq"), each.c.value.label("order_id")).subquery("listed")


# -- managing jobs --------------------------------------------------------------------------
def cancel_job(db: Database, actor: Actor, job_id: int) -> JobView:
    """Stop a queued or running job: a queued one at once, a running one at its next
    chunk (finished items stay done; the rest stay pending)."""
    actor = authorize(db, actor, Permission.MANAGE_JOBS)
    job = read_job(db, job_id)
    if job.finished:
        raise ValidationError(
            f"Job #{job.id} is already {job.status_label.lower()}; there is nothing to cancel."
        )
    now = utcnow()
    with db.write() as conn:
        recorded = conn.execute(
            update(jobs)
            .where(jobs.c.id == job.id, jobs.c.status.in_(ACTIVE_STATUSES))
            .values(cancel_requested=True)
        ).rowcount
        conn.execute(
            update(jobs)
            .where(jobs.c.id == job.id, jobs.c.status == JobStatus.QUEUED.value)
            .values(status=JobStatus.CANCELED.value, finished_at=now)
        )
    if not recorded:  # it finished between our read and the write: say so, never "canceled"
        done = read_job(db, job.id)
        raise ValidationError(
            f"Job #{done.id} had already finished ({done.status_label}: {done.succeeded:,} "
            f"succeeded, {done.failed:,} failed); nothing was canceled."
        )
    finish_if_done(db, job.id)  # a running job nobody works on any more stops now
    return read_job(db, job.id)


def retry_plan(db: Database, job_id: int, *, actor: Actor) -> RetryPlan:
    """How many failed orders of job `job_id` a retry can fix now, and why not the others."""
    authorize(db, actor, Permission.VIEW)
    job = read_job(db, job_id)
    with db.read() as conn:
        return _retry_plan(conn, job.id, JobAction(job.action).move)


def retry_failed(db: Database, actor: Actor, job_id: int) -> JobView:
    """A new job of the same action over those failed orders of `job_id` that can succeed
    on a retry (job_failures: a circumstantial failure, an order still eligible); refused,
    saying why, when there are none."""
    actor = authorize(db, actor, Permission.MANAGE_JOBS)
    job = read_job(db, job_id)
    action = JobAction(job.action)
    actor = authorize(db, actor, action.permission)
    if not action.selects_orders:
        raise ValidationError(f"Job #{job.id} is a reconciliation; start a new one for its period instead.")
    if not job.finished:
        raise ValidationError(
            f"Job #{job.id} is still {job.status_label.lower()}; retry its failures when it has finished."
        )
    if job.failed == 0:
        raise ValidationError(f"Job #{job.id} has no failed orders to retry.")
    now = utcnow()
    with db.write() as conn:
        new_id = conn.execute(
            insert(jobs).values(
                action=action.value,
                status=JobStatus.QUEUED.value,
                actor=actor.label,
                actor_role=_actor_role(actor),
                selection="",
                reason=job.reason,
                total=0,
                succeeded=0,
                failed=0,
                created_at=now,
                cancel_requested=False,
                retry_of=job.id,
            )
        ).inserted_primary_key[0]
        frozen = conn.execute(
            select(jobs.c.selection_filters, jobs.c.selection_max_id).where(jobs.c.id == job.id)
        ).one()
        if frozen.selection_max_id is None:  # a filtered export has no items: it is retried whole
            plan = _retry_plan(conn, job.id, action.move)
            if plan.retryable == 0:
                raise ValidationError(f"Job #{job.id}: nothing to retry. {plan.summary()}")
        source = select(
            literal(new_id),
            job_items.c.seq,
            job_items.c.order_id,
            job_items.c.order_number,
            literal(ITEM_PENDING),
            literal(0),
        ).where(job_items.c.job_id == job.id, job_items.c.status == ITEM_FAILED)
        if action.move is not None:
            source = source.join_from(job_items, orders, orders.c.id == job_items.c.order_id).where(
                retryable_condition(action.move)
            )
        conn.execute(
            insert(job_items).from_select(
                ["job_id", "seq", "order_id", "order_number", "status", "attempts"], source
            )
        )
        total = conn.execute(
            select(func.count()).select_from(job_items).where(job_items.c.job_id == new_id)
        ).scalar_one()
        if total == 0 and frozen.selection_max_id is not None:  # a filtered export: the same selection
            conn.execute(
                update(jobs)
                .where(jobs.c.id == new_id)
                .values(selection_filters=frozen.selection_filters, selection_max_id=frozen.selection_max_id)
            )
            total = job.failed
        if total == 0:
            raise ValidationError(f"Job #{job.id} has no failed orders to retry.")
        conn.execute(
            update(jobs)
            .where(jobs.c.id == new_id)
            .values(
                total=total,
                selection=f"The {total:,} failed order{'s' if total != 1 else ''} "
                f"of job #{job.id} ({job.selection})"[:2000],
            )
        )
        row = conn.execute(select(jobs).where(jobs.c.id == new_id)).one()
    job_queued.set()
    return _view(row)


def finish_if_done(db: Database, job_id: int, *, now: dt.datetime | None = None) -> str | None:
    """Close a running job whose items are all done (completed, completed with failures
    or failed, from counts taken now), or whose cancel was asked for and which nobody
    holds any more. Safe to call from any worker at any time; returns the new status."""
    now = now or utcnow()
    pending = exists().where(job_items.c.job_id == job_id, job_items.c.status == ITEM_PENDING)
    with db.read() as conn:  # the common case, a job under way, costs one read
        state = conn.execute(
            select(jobs.c.status, jobs.c.cancel_requested, pending.label("pending")).where(
                jobs.c.id == job_id
            )
        ).first()
    if state is None or state.status not in ACTIVE_STATUSES or (state.pending and not state.cancel_requested):
        return None

    def count(status: str):
        return (
            select(func.count())
            .select_from(job_items)
            .where(job_items.c.job_id == job_id, job_items.c.status == status)
            .scalar_subquery()
        )

    # An export frozen as filters + an id bound has no items: only its run closes it.
    filtered_export = jobs.c.selection_max_id.is_not(None)
    with db.write() as conn:
        done = conn.execute(
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.status.in_(ACTIVE_STATUSES), ~pending, ~filtered_export)
            .values(
                succeeded=count(ITEM_SUCCEEDED),
                failed=count(ITEM_FAILED),
                status=case(
                    (count(ITEM_FAILED) == 0, JobStatus.COMPLETED.value),
                    (count(ITEM_SUCCEEDED) == 0, JobStatus.FAILED.value),
                    else_=JobStatus.COMPLETED_WITH_FAILURES.value,
                ),
                started_at=func.coalesce(jobs.c.started_at, now),
                finished_at=now,
                lease_owner=None,
                lease_expires_at=None,
            )
            .returning(jobs.c.status)
        ).first()
        if done is not None:
            return done.status
        held = exists().where(
            job_items.c.job_id == job_id,
            job_items.c.status == ITEM_PENDING,
            job_items.c.lease_expires_at > now,
        )
        export_held = (
            jobs.c.action.in_(WHOLE_JOB_ACTIONS)
            & jobs.c.lease_expires_at.is_not(None)
            & (jobs.c.lease_expires_at > now)
        )
        canceled = conn.execute(
            update(jobs)
            .where(
                jobs.c.id == job_id,
                jobs.c.status.in_(ACTIVE_STATUSES),
                jobs.c.cancel_requested.is_(True),
                ~held,
                ~export_held,
            )
            .values(status=JobStatus.CANCELED.value, finished_at=now, lease_owner=None, lease_expires_at=None)
            .returning(jobs.c.status)
        ).first()
        return canceled.status if canceled is not None else None


__all__ = [
    "JobAction",
    "JobStatus",
    "JobView",
    "Preflight",
    "preflight",
    "enqueue",
    "list_jobs",
    "get_job",
    "read_job",
    "job_failures",
    "cancel_job",
    "retry_failed",
    "retry_plan",
    "reason_problem",
    "REASON_REQUIRED",
    "finish_if_done",
    "ineligible_reason",
    "job_actor",
]
