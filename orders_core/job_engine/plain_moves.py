"""A chunk of a move job that hands no money back (mass Fulfill): claimed, moved,
written to each order's timeline and recorded in one transaction, set-based, with
no Python object per order.

- What it moves comes from the move table (status.BULK_SOURCE_STATUSES, MOVES): a
  claimed order still in the move's source status, with no charge or refund in
  flight and (Fulfill) not disputed, whose item has attempts left. That is a subset
  of what lifecycle.apply_moves would move; every other claimed order stays claimed
  and goes through apply_moves (moves.ChunkMover), which moves it or says why not.
- PostgreSQL: one statement. The items are claimed FOR UPDATE SKIP LOCKED, their
  orders locked in id order, the guarded UPDATE ... RETURNING feeds the events'
  INSERT and the items' UPDATE, and the job's count goes up by what moved.
- SQLite: the same steps, one set-based statement each, in one write transaction
  (the write lock keeps them consistent with each other).
- Crash safety: nothing of a chunk is committed until all of it is, so a worker
  killed mid-chunk leaves its items pending and free to claim again, and the guard
  on the order's status means no order is ever moved twice.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as dt
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    DateTime,
    case,
    exists,
    func,
    insert,
    literal,
    select,
    true,
    update,
)

from ..clock import utcnow
from ..db import Database
from ..dispute_queries import disputed_condition
from ..errors import OrdersError, PermissionDenied
from ..jobs import ACTIVE_STATUSES, ITEM_PENDING, ITEM_SUCCEEDED, JobAction, JobStatus, job_actor
from ..lifecycle import ENTERED_AT, EXTERNAL_ORIGIN, MAX_REASON
from ..schema import job_items, jobs, order_events, orders, payments, refunds
from ..staff import Actor, authorize
from ..status import BULK_SOURCE_STATUSES, MOVES, Action, PaymentStatus, RefundStatus, Status, refunds_on
from ..timeline import EventKind
from ..validation import clean_text
from .claims import CLAIMED_COLUMNS, Claim, Leases, claimable, claimed_items
from .moves import MAX_ITEM_ATTEMPTS  # an item claimed that often is ChunkMover's to give up


@dataclasses.dataclass(frozen=True)
class PlainMove:
    """A mass move from one source status to one target, without a refund."""

    action: Action
    source: Status
    target: Status


def plain_move(move: Action | None) -> PlainMove | None:
    """`move` as a set-based chunk makes it; None when it refunds (Cancel, Return) or
    has several source statuses."""
    sources = BULK_SOURCE_STATUSES.get(move) if move is not None else None
    if move is None or not sources or len(sources) != 1:
        return None
    [source] = sources
    if refunds_on(source, move):
        return None
    return PlainMove(move, source, MOVES[(source, move)])


def movable(plain: PlainMove) -> list[ColumnElement[bool]]:
    """The conditions under which apply_moves would make `plain`'s move of an order
    without a word: in the source status, no pending charge, no refund of ours pending
    (lifecycle._in_flight) and, for a Fulfill, not disputed."""
    conditions = [
        orders.c.status == plain.source.value,
        ~exists().where(payments.c.order_id == orders.c.id, payments.c.status == PaymentStatus.PENDING.value),
        ~exists().where(
            refunds.c.order_id == orders.c.id,
            refunds.c.status == RefundStatus.PENDING.value,
            refunds.c.origin != EXTERNAL_ORIGIN,
        ),
    ]
    if plain.action == Action.FULFILL:
        conditions.append(~disputed_condition())
    return conditions


@dataclasses.dataclass
class PlainChunk:
    """What one set-based chunk did: items claimed, orders moved (recorded as
    succeeded), and the claimed rest for ChunkMover (None when there is none)."""

    claimed: int
    moved: int
    rest: Claim | None


@dataclasses.dataclass
class _Job:
    actor: Actor
    note: str
    action: JobAction


class PlainChunks:
    """Set-based chunks of one worker (its Leases: id, lease length, touched jobs).
    On PostgreSQL up to `concurrency` chunks run at once, each on its own connection
    (their SKIP LOCKED claims never overlap), so the server's work on one chunk
    overlaps the next one's; SQLite's one writer runs them one at a time anyway."""

    def __init__(self, leases: Leases, concurrency: int = 1):
        self.leases = leases
        self.db: Database = leases.db
        self.concurrency = max(1, concurrency) if self.db.is_postgres else 1
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    def run_many(self, job_id: int, plain: PlainMove, size: int) -> list[PlainChunk] | None:
        """Up to `concurrency` chunks of `size` at once (run's); None as run's."""
        if self.concurrency == 1:
            chunk = self.run(job_id, plain, size)
            return None if chunk is None else [chunk]
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=self.concurrency, thread_name_prefix="orders-plain-chunk"
            )
        futures = [self._pool.submit(self.run, job_id, plain, size) for _ in range(self.concurrency)]
        concurrent.futures.wait(futures)
        chunks = [f.result() for f in futures]  # a failure in one is the step's failure
        done = [c for c in chunks if c is not None]
        return done or None

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def run(self, job_id: int, plain: PlainMove, size: int) -> PlainChunk | None:
        """Claim up to `size` items of job `job_id` and move what can move; None when this
        path does not apply (the job is not active, or its requester must be checked
        by the claim that can fail the job: Leases.claim_chunk)."""
        job = self._job(job_id)
        if job is None:
            return None
        now = utcnow()
        until = now + self.leases.lease
        run = _postgres_chunk if self.db.is_postgres else _sqlite_chunk
        with self.db.write() as conn:
            claimed, moved, rest_ids = run(conn, self.leases.worker_id, job_id, plain, job, size, now, until)
            rest = (
                _rest(conn, self.leases.worker_id, job, job_id, until, rest_ids) if claimed > moved else None
            )
        if claimed:
            self.leases.touched.add(job_id)
        return PlainChunk(claimed, moved, rest)

    def _job(self, job_id: int) -> _Job | None:
        with self.db.read() as conn:
            row = conn.execute(
                select(jobs.c.id, jobs.c.action, jobs.c.actor, jobs.c.actor_role, jobs.c.reason).where(
                    jobs.c.id == job_id,
                    jobs.c.status.in_(ACTIVE_STATUSES),
                    jobs.c.cancel_requested.is_(False),
                )
            ).first()
        if row is None:
            return None
        action = JobAction(row.action)
        try:
            actor = authorize(self.db, job_actor(row), action.permission)
        except (OrdersError, PermissionDenied, ValueError):
            return None  # Leases.claim_chunk fails the items (or the job) saying why
        note = row.reason or f"Bulk {action.label} (job #{job_id})"
        return _Job(
            actor, clean_text(note, "Reason", max_length=MAX_REASON, required=False, multiline=True), action
        )


def _moves(plain: PlainMove, now: dt.datetime) -> dict[str, Any]:
    values: dict[str, Any] = {"status": plain.target.value, "updated_at": now}
    if plain.target in ENTERED_AT:
        values[ENTERED_AT[plain.target]] = now
    return values


EVENT_COLUMNS = ["order_id", "at", "actor", "action", "from_status", "to_status", "note", "job_id"]


def _event_values(
    order_id: ColumnElement[Any], plain: PlainMove, job: _Job, job_id: int, now: dt.datetime
) -> list[ColumnElement[Any]]:
    """The columns of each moved order's event (timeline.event_row's, set-based)."""
    return [
        order_id,
        literal(now, DateTime),
        literal(job.actor.label),
        literal(EventKind.of_move(plain.action).value),
        literal(plain.source.value),
        literal(plain.target.value),
        literal(job.note),
        literal(job_id),
    ]


def _postgres_chunk(
    conn: Connection,
    worker_id: str,
    job_id: int,
    plain: PlainMove,
    job: _Job,
    size: int,
    now: dt.datetime,
    until: dt.datetime,
) -> tuple[int, int, list[int] | None]:
    """The whole chunk in one statement; (items claimed, orders moved, the claimed
    rest's item ids)."""
    active = jobs.c.status.in_(ACTIVE_STATUSES)
    job_open = exists().where(jobs.c.id == job_id, active, jobs.c.cancel_requested.is_(False))
    picked = (
        select(job_items.c.id, job_items.c.order_id, job_items.c.attempts)
        .where(*claimable(job_id, now), job_open)
        .order_by(job_items.c.seq)
        .limit(size)
        .with_for_update(skip_locked=True)
        .cte("picked")
    )
    # Locked in id order, as apply_moves locks them, so two writers never wait on each
    # other in opposite orders.
    targets = (
        select(orders.c.id, picked.c.id.label("item_id"))
        .join_from(picked, orders, orders.c.id == picked.c.order_id)
        .where(picked.c.attempts < MAX_ITEM_ATTEMPTS, *movable(plain))
        .order_by(orders.c.id)
        .with_for_update(of=orders)
        .cte("targets")
    )
    moved = (
        update(orders)
        .where(orders.c.id == targets.c.id, orders.c.status == plain.source.value)
        .values(**_moves(plain, now))
        .returning(orders.c.id, targets.c.item_id)
        .cte("moved")
    )
    events = insert(order_events).from_select(
        EVENT_COLUMNS, select(*_event_values(moved.c.id, plain, job, job_id, now))
    )
    done = (
        update(job_items)
        .where(job_items.c.id == moved.c.item_id)
        .values(
            status=ITEM_SUCCEEDED,
            worker=worker_id,
            attempts=job_items.c.attempts + 1,
            reason=None,
            finished_at=now,
            lease_expires_at=None,
        )
        .returning(job_items.c.id)
        .cte("done")
    )
    rest = (
        update(job_items)
        .where(job_items.c.id == picked.c.id, picked.c.id.not_in(select(moved.c.item_id)))
        .values(worker=worker_id, lease_expires_at=until, attempts=job_items.c.attempts + 1)
        .returning(job_items.c.id)
        .cte("rest")
    )
    n_done = select(func.count()).select_from(done).scalar_subquery()
    row = conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id, exists(select(picked.c.id)))
        .values(
            succeeded=jobs.c.succeeded + n_done,
            status=case((active, JobStatus.RUNNING.value), else_=jobs.c.status),
            started_at=func.coalesce(jobs.c.started_at, now),
            lease_owner=case((active, worker_id), else_=jobs.c.lease_owner),
            lease_expires_at=case((active, until), else_=jobs.c.lease_expires_at),
        )
        .returning(
            select(func.count()).select_from(picked).scalar_subquery(),
            n_done,
            select(func.array_agg(rest.c.id)).scalar_subquery(),
        )
        .add_cte(events.cte("events"))
    ).first()
    if row is None:
        return 0, 0, None
    claimed, moved_count, rest_ids = int(row[0]), int(row[1]), list(row[2] or [])
    if moved_count + len(rest_ids) != claimed:  # never: each claimed item is in one of the two
        raise RuntimeError(
            f"job #{job_id}: {claimed} items claimed, {moved_count} + {len(rest_ids)} accounted for"
        )
    return claimed, moved_count, rest_ids


def _sqlite_chunk(
    conn: Connection,
    worker_id: str,
    job_id: int,
    plain: PlainMove,
    job: _Job,
    size: int,
    now: dt.datetime,
    until: dt.datetime,
) -> tuple[int, int, list[int] | None]:
    """The chunk as set-based statements under the write lock; (claimed, moved, None:
    the rest is what the claim's lease marks)."""
    window = (
        select(job_items.c.seq)
        .where(*claimable(job_id, now))
        .order_by(job_items.c.seq)
        .limit(size)
        .subquery()
    )
    low, high, count = conn.execute(
        select(func.min(window.c.seq), func.max(window.c.seq), func.count()).select_from(window)
    ).one()
    if not count:
        return 0, 0, None
    opened = conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.status.in_(ACTIVE_STATUSES), jobs.c.cancel_requested.is_(False))
        .values(
            status=JobStatus.RUNNING.value,
            started_at=func.coalesce(jobs.c.started_at, now),
            lease_owner=worker_id,
            lease_expires_at=until,
        )
    ).rowcount
    if not opened:
        return 0, 0, None
    # Under the write lock the window's claimable items are exactly the first `size`.
    in_window = [job_items.c.job_id == job_id, job_items.c.seq >= low, job_items.c.seq <= high]
    claimed = conn.execute(
        update(job_items)
        .where(*claimable(job_id, now), *in_window)
        .values(worker=worker_id, lease_expires_at=until, attempts=job_items.c.attempts + 1)
    ).rowcount
    moved = conn.execute(
        update(job_items)
        .where(
            *in_window,
            job_items.c.worker == worker_id,
            job_items.c.status == ITEM_PENDING,
            job_items.c.lease_expires_at == until,
            job_items.c.attempts <= MAX_ITEM_ATTEMPTS,
            exists().where(orders.c.id == job_items.c.order_id, *movable(plain)),
        )
        .values(status=ITEM_SUCCEEDED, reason=None, finished_at=now, lease_expires_at=None)
    ).rowcount
    if moved:
        just_done = [
            *in_window,
            job_items.c.worker == worker_id,
            job_items.c.status == ITEM_SUCCEEDED,
            job_items.c.finished_at == now,
        ]
        conn.execute(
            insert(order_events).from_select(
                EVENT_COLUMNS,
                select(*_event_values(orders.c.id, plain, job, job_id, now))
                .join_from(job_items, orders, orders.c.id == job_items.c.order_id)
                .where(*just_done)
                .order_by(job_items.c.seq),
            )
        )
        changed = conn.execute(
            update(orders)
            .where(
                orders.c.id.in_(select(job_items.c.order_id).where(*just_done)),
                orders.c.status == plain.source.value,
            )
            .values(**_moves(plain, now))
        ).rowcount
        if changed != moved:  # never under the write lock; roll the chunk back if so
            raise RuntimeError(f"job #{job_id}: {moved} items succeeded but {changed} orders moved")
        conn.execute(update(jobs).where(jobs.c.id == job_id).values(succeeded=jobs.c.succeeded + moved))
    return claimed, moved, None


def _rest(
    conn: Connection, worker_id: str, job: _Job, job_id: int, until: dt.datetime, ids: list[int] | None
) -> Claim | None:
    """The claimed items that did not move here, as a Claim for ChunkMover: those of
    `ids` (PostgreSQL, where this worker's other chunks may be in flight) or, under
    SQLite's write lock, those this claim's lease marks."""
    rows = conn.execute(
        select(*CLAIMED_COLUMNS)
        .where(
            job_items.c.job_id == job_id,
            job_items.c.status == ITEM_PENDING,
            job_items.c.worker == worker_id,
            job_items.c.lease_expires_at == until,
            job_items.c.id.in_(ids) if ids is not None else true(),
        )
        .order_by(job_items.c.seq)
    ).all()
    if not rows:
        return None
    items = claimed_items(rows)
    return Claim(job_id, job.action, job.actor, None, job.note, items, (rows[0].seq, rows[-1].seq))
