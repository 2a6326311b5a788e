"""Workers: they run the queued bulk jobs (orders_core/jobs.py), chunk by chunk.

Claims and leases
- A move job (fulfill, cancel, return) is worked on in chunks of
  ORDERS_JOB_CHUNK_SIZE items. A worker claims a chunk in one short transaction: the
  first pending items whose lease is free or expired, stamped with the worker's id, a
  lease (ORDERS_JOB_LEASE_SECONDS) and one more attempt. On PostgreSQL the claim
  selects them FOR UPDATE SKIP LOCKED, so several workers share one job's queue
  without waiting for or colliding with each other; on SQLite claims are serialised
  by the write lock (BEGIN IMMEDIATE, WAL, busy timeout). The same transaction marks
  the job running and records the worker in the job's lease.
- While a worker works on a chunk (or an export), a heartbeat thread renews its
  leases every third of the lease. A worker that dies stops renewing: once the lease
  has run out, any worker claims those items again and resumes only them.
- Completing a chunk is guarded by the claim (worker id, item still pending), so the
  results of a worker that lost its claim are dropped rather than recorded twice.
- An item claimed again after a crash is first checked against the order's own
  timeline: an event of this job that made the move means it succeeded (the crash
  came between the move and its record); lifecycle's crash-safe refunds take care of
  the money (a pending refund is resumed with its idempotency key, never repeated).
- An item claimed MAX_ITEM_ATTEMPTS times without being recorded fails with the last
  error, so one poisonous order cannot stop a job forever.
- Cancelling is cooperative: a worker claims no new chunk of a job whose cancel was
  asked for; the last one to let go closes the job as canceled.
- SIGTERM (standalone `python -m orders_core worker`): the current chunk is
  finished and recorded, the leases are released, and the process exits.

Gateway calls (Cancel and Return refund each order) run on a bounded thread pool
(ORDERS_REFUND_CONCURRENCY) through a per-process requests-per-second limiter
(ORDERS_GATEWAY_RPS; by default none for the simulated gateway and 25/s for Stripe,
its test-mode limit). Transient failures (outage, refund in flight elsewhere) are
retried with exponential backoff; permanent ones fail that item and leave the order
unchanged (lifecycle.apply_moves guarantees it).
"""
from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import logging
import os
import secrets
import socket
import threading
import time
from typing import Callable, Sequence

from sqlalchemy import bindparam, func, or_, select, update

from . import jobs as jobs_module
from .clock import utcnow
from .config import Settings, load_settings
from .db import Database, open_database
from .errors import OrdersError, PermissionDenied, StaleOrder
from .jobs import (ACTIVE_STATUSES, ITEM_FAILED, ITEM_PENDING, ITEM_SUCCEEDED, JobAction,
                   JobStatus, JobView, finish_if_done, job_actor, read_job)
from .lifecycle import apply_moves
from .payments import GATEWAY_NAMES, Gateways
from .schema import job_items, jobs, order_events
from .staff import Actor, Permission, authorize
from .status import BULK_SOURCE_STATUSES, MOVES, Action, IllegalMove

log = logging.getLogger("orders_core.worker")

MAX_ITEM_ATTEMPTS = 5
REFUNDING = frozenset({Action.CANCEL, Action.RETURN})
STRIPE_TEST_MODE_RPS = 25.0
BACKOFF_BASE_SECONDS = 0.25
BACKOFF_MAX_SECONDS = 5.0
_ID_CHUNK = 900


def default_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# -- gateway pacing -------------------------------------------------------------------------
class RateLimiter:
    """Paces calls to at most `rate` per second, evenly, across threads."""

    def __init__(self, rate: float):
        self.rate = float(rate)
        self._interval = 1.0 / self.rate
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self._interval
        if start > now:
            time.sleep(start - now)


_limiters: dict[tuple[str, float], RateLimiter] = {}
_limiters_lock = threading.Lock()


def gateway_rate(gateway_name: str, settings: Settings) -> float | None:
    """Requests per second allowed to `gateway_name` from this process (None: no limit)."""
    if settings.gateway_requests_per_second:
        return float(settings.gateway_requests_per_second)
    return STRIPE_TEST_MODE_RPS if gateway_name == "stripe" else None


def _limiter(name: str, rate: float) -> RateLimiter:
    with _limiters_lock:  # one per process and gateway: every worker thread shares it
        limiter = _limiters.get((name, rate))
        if limiter is None:
            limiter = _limiters[(name, rate)] = RateLimiter(rate)
        return limiter


class _PacedGateway:
    """A gateway whose every request first waits for the limiter."""

    def __init__(self, inner, limiter: RateLimiter):
        self.inner = inner
        self.limiter = limiter

    @property
    def name(self) -> str:
        return self.inner.name

    def __getattr__(self, attribute):
        real = getattr(self.inner, attribute)
        if not callable(real):
            return real

        def call(*args, **kwargs):
            self.limiter.acquire()
            return real(*args, **kwargs)

        return call


class PacedGateways:
    """Gateways (orders_core.payments.Gateways) with each gateway's requests paced."""

    def __init__(self, base: Gateways, settings: Settings):
        self.base = base
        self.db = base.db
        self.settings = settings
        self._paced: dict[str, object] = {}
        self._lock = threading.Lock()

    @property
    def default(self):
        return self.named(self.settings.gateway)

    def named(self, name: str):
        with self._lock:
            gateway = self._paced.get(name)
            if gateway is None:
                inner = self.base.named(name)
                rate = gateway_rate(name, self.settings)
                gateway = _PacedGateway(inner, _limiter(name, rate)) if rate else inner
                self._paced[name] = gateway
            return gateway

    def use(self, gateway) -> "PacedGateways":
        with self._lock:
            self.base.use(gateway)
            self._paced.pop(gateway.name, None)
        return self


# -- the worker -------------------------------------------------------------------------------
@dataclasses.dataclass
class _Item:
    id: int
    order_id: int
    number: str
    attempts: int
    reason: str | None


@dataclasses.dataclass
class _Claim:
    job_id: int
    action: JobAction
    actor: Actor | None
    actor_error: str | None
    note: str
    items: list[_Item]
    seq_range: tuple[int, int]  # the lowest and highest seq of the claimed items


class _Rollback(Exception):
    pass


class Worker:
    """Runs queued jobs. One per thread; several per database (and per job) are fine."""

    def __init__(self, db: Database, *, name: str | None = None, gateways: Gateways | None = None,
                 settings: Settings | None = None, retry_budget_seconds: float | None = None):
        self.db = db
        self.settings = settings or load_settings()
        self.name = name or default_worker_name()
        # The identity claims are stamped with: unique even if two workers share a name.
        self.id = f"{self.name[:110]}/{secrets.token_hex(4)}"
        self.gateways = PacedGateways(gateways or Gateways(db, self.settings), self.settings)
        self.lease = dt.timedelta(seconds=max(1, self.settings.job_lease_seconds))
        self.chunk_size = max(1, self.settings.job_chunk_size)
        self.concurrency = max(1, self.settings.refund_concurrency)
        # How long a chunk keeps retrying transient failures before failing those items
        # (long enough for another process's refund lease to run out).
        self.retry_budget = (float(retry_budget_seconds) if retry_budget_seconds is not None
                             else max(30.0, self.settings.payment_lease_seconds + 10.0))
        # Refunds are claimed (with a lease of ORDERS_PAYMENT_LEASE_SECONDS) a batch at a
        # time before their gateway calls: under a requests-per-second limit, batches
        # small enough that their calls end well within that lease (each order takes
        # about three requests).
        rates = [r for r in (gateway_rate(n, self.settings) for n in GATEWAY_NAMES) if r]
        self.refund_batch = self.chunk_size if not rates else max(
            10, min(self.chunk_size, int(min(rates) * self.settings.payment_lease_seconds / 6)))
        self.processed = 0
        self.last_beat = time.monotonic()  # for /readyz: when it last looked for work
        self._stop = threading.Event()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._touched: set[int] = set()
        self._heartbeat = _Heartbeat(self)

    # -- running ------------------------------------------------------------------------
    def run_once(self, stop: threading.Event | None = None, *, job_id: int | None = None) -> int:
        """Process everything claimable now (only job `job_id` if given); returns the
        number of items processed. Stops between chunks when `stop` is set."""
        self._stop = stop or threading.Event()
        total = 0
        try:
            while not self._stop.is_set():
                self.last_beat = time.monotonic()
                done = self._step(job_id)
                if done is None:
                    break
                total += done
        finally:
            if self._stop.is_set():
                self.release()
        return total

    def run_forever(self, stop: threading.Event, poll_seconds: float = 1.0) -> None:
        """Work until `stop` is set, polling for new jobs every `poll_seconds`."""
        failures = 0
        try:
            while not stop.is_set():
                self.last_beat = time.monotonic()
                try:
                    done = self.run_once(stop)
                    failures = 0
                except Exception:  # noqa: BLE001 - a worker outlives a database hiccup
                    failures += 1
                    log.exception("worker %s: unexpected failure; retrying", self.id)
                    stop.wait(min(30.0, 0.5 * 2 ** min(failures, 6)))
                    continue
                if done == 0:
                    _idle_wait(stop, poll_seconds)
        finally:
            self.release()
            self.close()

    def close(self) -> None:
        self._heartbeat.close()
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def release(self) -> None:
        """Give up this worker's leases now (the items stay pending for others)."""
        if not self._touched:
            return
        touched = sorted(self._touched)
        try:
            with self.db.write() as conn:
                conn.execute(update(job_items).where(
                    job_items.c.job_id.in_(touched), job_items.c.worker == self.id,
                    job_items.c.status == ITEM_PENDING).values(lease_expires_at=None))
                conn.execute(update(jobs).where(jobs.c.id.in_(touched),
                                                jobs.c.lease_owner == self.id)
                             .values(lease_owner=None, lease_expires_at=None))
            for job_id in touched:
                finish_if_done(self.db, job_id)
        except Exception:  # noqa: BLE001 - the leases run out by themselves
            log.warning("worker %s: could not release its leases", self.id, exc_info=True)
        self._touched.clear()

    @property
    def _stopping(self) -> bool:
        return self._stop.is_set()

    def _step(self, only_job: int | None) -> int | None:
        """Claim and do one unit of work; None when nothing is claimable."""
        query = (select(jobs.c.id, jobs.c.action, jobs.c.cancel_requested)
                 .where(jobs.c.status.in_(ACTIVE_STATUSES)).order_by(jobs.c.id).limit(50))
        if only_job is not None:
            query = query.where(jobs.c.id == only_job)
        with self.db.read() as conn:
            candidates = conn.execute(query).all()
        for job in candidates:
            if self._stopping:
                return None
            if job.cancel_requested:
                self._finish(job.id)
                continue
            if job.action == JobAction.EXPORT.value:
                done = self._run_export(job.id)
            else:
                claim = self._claim(job.id)
                done = None if claim is None else self._process(claim)
            if done is not None:
                return done
            self._finish(job.id)
        return None

    def _finish(self, job_id: int) -> None:
        status = finish_if_done(self.db, job_id)
        if status:
            log.info("job #%d %s", job_id, status)

    # -- move jobs ----------------------------------------------------------------------
    def _claim(self, job_id: int) -> _Claim | None:
        now = utcnow()
        until = now + self.lease
        picked = (select(job_items.c.id)
                  .where(job_items.c.job_id == job_id, job_items.c.status == ITEM_PENDING,
                         or_(job_items.c.lease_expires_at.is_(None),
                             job_items.c.lease_expires_at < now))
                  .order_by(job_items.c.seq).limit(self.chunk_size))
        if self.db.is_postgres:
            picked = picked.with_for_update(skip_locked=True)
        try:
            with self.db.write() as conn:
                rows = conn.execute(update(job_items).where(job_items.c.id.in_(picked)).values(
                    worker=self.id, lease_expires_at=until, attempts=job_items.c.attempts + 1)
                    .returning(job_items.c.id, job_items.c.order_id, job_items.c.order_number,
                               job_items.c.attempts, job_items.c.reason, job_items.c.seq)).all()
                if not rows:
                    raise _Rollback
                job = conn.execute(update(jobs).where(
                    jobs.c.id == job_id, jobs.c.status.in_(ACTIVE_STATUSES),
                    jobs.c.cancel_requested.is_(False)).values(
                    status=JobStatus.RUNNING.value,
                    started_at=func.coalesce(jobs.c.started_at, now),
                    lease_owner=self.id, lease_expires_at=until).returning(
                    jobs.c.id, jobs.c.action, jobs.c.actor, jobs.c.actor_role,
                    jobs.c.reason)).first()
                if job is None:  # canceled or finished meanwhile: claim nothing
                    raise _Rollback
        except _Rollback:
            return None
        self._touched.add(job_id)
        try:
            actor, actor_error = job_actor(job), None
        except (OrdersError, ValueError) as error:
            actor, actor_error = None, str(error)
        if actor is not None:
            try:  # the requester as the staff table has them now, at every chunk
                actor = authorize(self.db, actor, JobAction(job.action).permission)
            except PermissionDenied as error:
                self._stop_for_requester(job_id, f"Stopped: {error} (access withdrawn since "
                                                 f"{job.actor} asked for this job)")
                return None
        rows.sort(key=lambda r: r.seq)
        items = [_Item(r.id, r.order_id, r.order_number, r.attempts, r.reason) for r in rows]
        note = job.reason or f"Bulk {JobAction(job.action).label} (job #{job_id})"
        return _Claim(job_id, JobAction(job.action), actor, actor_error, note, items,
                      (rows[0].seq, rows[-1].seq))

    def _stop_for_requester(self, job_id: int, reason: str) -> None:
        """The requester may no longer do this: every item still pending fails with the
        reason, in one statement, and the job closes saying why."""
        now = utcnow()
        with self.db.write() as conn:
            conn.execute(update(job_items).where(
                job_items.c.job_id == job_id, job_items.c.status == ITEM_PENDING).values(
                status=ITEM_FAILED, reason=reason[:2000], worker=self.id, finished_at=now,
                lease_expires_at=None))
            conn.execute(update(jobs).where(jobs.c.id == job_id).values(error=reason[:2000]))
        log.warning("job #%d: %s", job_id, reason)
        finish_if_done(self.db, job_id)

    def _process(self, claim: _Claim) -> int:
        failure: Exception | None = None
        with self._heartbeat.holding(claim.job_id, items=True):
            try:
                done, released = self._move(claim)
            except Exception as error:  # noqa: BLE001 - recorded, retried, then given up
                failure = error
        # Recorded with the heartbeat paused: on PostgreSQL the renewal and the record
        # would otherwise lock the same item rows in different orders (a deadlock).
        if failure is not None:
            log.error("job #%d: a chunk failed; its items will be tried again", claim.job_id,
                      exc_info=failure)
            self._release_items(claim, f"{type(failure).__name__}: {failure}")
            self._stop.wait(1.0)
            return 0
        recorded = self._complete(claim, done, released)
        self.processed += recorded
        return recorded  # the job is closed by the step that finds nothing left to claim

    def _move(self, claim: _Claim) -> tuple[dict[int, tuple[bool, str | None]], list[int]]:
        """Run the chunk through lifecycle.apply_moves: {order id: (ok, reason)} and the
        order ids to hand back unprocessed (stopping)."""
        done: dict[int, tuple[bool, str | None]] = {}
        for item in claim.items:
            if item.attempts > MAX_ITEM_ATTEMPTS:
                last = f"; the last attempt failed with {item.reason}" if item.reason else ""
                done[item.order_id] = (False, f"Gave up on order {item.number} after "
                                              f"{item.attempts - 1} attempts{last}.")
        todo = [i.order_id for i in claim.items if i.order_id not in done]
        if claim.actor is None:
            for order_id in todo:
                done[order_id] = (False, claim.actor_error)
            return done, []
        move = claim.action.move
        # Claimed before: the crash may have come after the move; ask the timeline.
        again = {i.order_id for i in claim.items if i.attempts > 1 and i.order_id in todo}
        if again:
            done.update(self._earlier_results(claim.job_id, move, sorted(again)))
            todo = [order_id for order_id in todo if order_id not in done]
        released: list[int] = []
        maybe_mine: list[int] = []
        deadline = time.monotonic() + self.retry_budget
        tries = 0
        while todo:
            try:
                outcomes = []
                for batch in _chunks(todo, self.refund_batch if move in REFUNDING else len(todo)):
                    outcomes += apply_moves(self.db, claim.actor, move, batch,
                                            reason=claim.note, gateways=self.gateways,
                                            job_id=claim.job_id, bulk=True,
                                            run_gateway_calls=self._run_gateway_calls)
            except OrdersError as error:  # the whole chunk refused (permission, reason)
                for order_id in todo:
                    done[order_id] = (False, str(error))
                break
            transient = []
            for outcome in outcomes:
                if outcome.ok:
                    done[outcome.order_id] = (True, None)
                elif outcome.transient:
                    transient.append(outcome)
                else:
                    done[outcome.order_id] = (False, outcome.reason)
                    if outcome.order_id in again and isinstance(outcome.error, (IllegalMove, StaleOrder)):
                        maybe_mine.append(outcome.order_id)
            if not transient:
                break
            tries += 1
            delay = _backoff(tries, [o.error for o in transient])
            if self._stopping:
                released = [o.order_id for o in transient]
                break
            if time.monotonic() + delay > deadline:
                for o in transient:
                    done[o.order_id] = (False, f"{o.reason} (gave up after {tries} tries)")
                break
            log.info("job #%d: %d orders failed transiently; retrying in %.1f s",
                     claim.job_id, len(transient), delay)
            if self._stop.wait(delay):
                released = [o.order_id for o in transient]
                break
            todo = [o.order_id for o in transient]
            # Some may have been moved by a worker whose claim ran out meanwhile.
            again.update(todo)
        if maybe_mine:  # refused because this job already moved it (a lost claim)
            for order_id, result in self._earlier_results(claim.job_id, move, maybe_mine).items():
                if result[0]:
                    done[order_id] = result
        return done, released

    def _earlier_results(self, job_id: int, move: Action,
                         order_ids: list[int]) -> dict[int, tuple[bool, str | None]]:
        """What this job already did to these orders, from their timelines."""
        source = next(iter(BULK_SOURCE_STATUSES[move]))
        target = MOVES[(source, move)].value
        results: dict[int, tuple[bool, str | None]] = {}
        with self.db.read() as conn:
            for chunk in _chunks(order_ids, _ID_CHUNK):
                for row in conn.execute(
                        select(order_events.c.order_id, order_events.c.action,
                               order_events.c.to_status, order_events.c.note)
                        .where(order_events.c.job_id == job_id,
                               order_events.c.order_id.in_(chunk))
                        .order_by(order_events.c.id)):
                    if row.action == move.value and row.to_status == target:
                        results[row.order_id] = (True, None)
                    elif results.get(row.order_id, (False,))[0]:
                        continue
                    elif row.action == "refund_failed":
                        results[row.order_id] = (False, row.note)
                    elif row.action == "refund":
                        results[row.order_id] = (False, "The order changed while its refund was "
                                                        "under way; the refund was recorded. "
                                                        + (row.note or ""))
        return results

    def _complete(self, claim: _Claim, done: dict[int, tuple[bool, str | None]],
                  released: list[int]) -> int:
        """Record the chunk's results, only for the items this worker still holds: each
        UPDATE is guarded by the claim (this worker's id, the item still pending)."""
        now = utcnow()
        item_of = {i.order_id: i.id for i in claim.items}
        reasons = {item_of[o]: reason or "Failed." for o, (ok, reason) in done.items() if not ok}
        handed_back = [i for o, i in item_of.items() if o not in done]
        expected = sum(1 for ok, _ in done.values() if ok)
        mine = (job_items.c.worker == self.id) & (job_items.c.status == ITEM_PENDING)
        failed: list[int] = []
        with self.db.write() as conn:
            for chunk in _chunks(list(reasons), _ID_CHUNK):
                failed += conn.execute(update(job_items).where(job_items.c.id.in_(chunk), mine)
                                       .values(status=ITEM_FAILED, finished_at=now,
                                               lease_expires_at=None)
                                       .returning(job_items.c.id)).scalars().all()
            if failed:  # now final and ours: their reasons
                conn.execute(update(job_items).where(job_items.c.id == bindparam("b_id"))
                             .values(reason=bindparam("b_reason")),
                             [{"b_id": i, "b_reason": reasons[i]} for i in failed])
            for chunk in _chunks(handed_back, _ID_CHUNK):
                conn.execute(update(job_items).where(job_items.c.id.in_(chunk), mine)
                             .values(lease_expires_at=None))
            # What is left of the claim, still leased, is what succeeded: no list of ids
            # (the seq range keeps it to this chunk's stretch of the index).
            succeeded = 0
            if expected:
                low, high = claim.seq_range
                succeeded = conn.execute(update(job_items).where(
                    job_items.c.job_id == claim.job_id, job_items.c.status == ITEM_PENDING,
                    job_items.c.seq >= low, job_items.c.seq <= high,
                    job_items.c.worker == self.id, job_items.c.lease_expires_at.is_not(None))
                    .values(status=ITEM_SUCCEEDED, reason=None, finished_at=now,
                            lease_expires_at=None)).rowcount
            if succeeded > expected:  # never: the claim holds exactly these items
                raise RuntimeError(f"job #{claim.job_id}: {succeeded} items recorded as "
                                   f"succeeded, {expected} expected; not recording the chunk")
            if succeeded or failed:
                conn.execute(update(jobs).where(jobs.c.id == claim.job_id).values(
                    succeeded=jobs.c.succeeded + succeeded, failed=jobs.c.failed + len(failed)))
        lost = expected + len(reasons) - succeeded - len(failed)
        if lost:
            log.warning("job #%d: %d items were claimed by another worker after this "
                        "worker's lease ran out; their results were left to it",
                        claim.job_id, lost)
        return succeeded + len(failed)

    def _release_items(self, claim: _Claim, error: str) -> None:
        try:
            with self.db.write() as conn:
                conn.execute(update(job_items).where(
                    job_items.c.job_id == claim.job_id, job_items.c.worker == self.id,
                    job_items.c.status == ITEM_PENDING).values(
                    lease_expires_at=None, reason=f"Attempt failed: {error}"[:2000]))
        except Exception:  # noqa: BLE001 - the lease runs out by itself
            log.warning("job #%d: could not release the chunk", claim.job_id, exc_info=True)

    def _run_gateway_calls(self, call: Callable, pending: Sequence) -> None:
        """lifecycle's hook: the per-order gateway calls on a bounded pool."""
        if self.concurrency <= 1 or len(pending) <= 1:
            for item in pending:
                call(item)
            return
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=self.concurrency, thread_name_prefix="orders-gateway")
        futures = [self._pool.submit(call, item) for item in pending]
        concurrent.futures.wait(futures)
        for future in futures:
            future.result()  # a crash in one call is the chunk's crash

    # -- export jobs ----------------------------------------------------------------------
    def _run_export(self, job_id: int) -> int | None:
        now = utcnow()
        with self.db.write() as conn:
            taken = conn.execute(update(jobs).where(
                jobs.c.id == job_id, jobs.c.action == JobAction.EXPORT.value,
                jobs.c.status.in_(ACTIVE_STATUSES), jobs.c.cancel_requested.is_(False),
                or_(jobs.c.lease_expires_at.is_(None), jobs.c.lease_expires_at < now,
                    jobs.c.lease_owner == self.id)).values(
                status=JobStatus.RUNNING.value, started_at=func.coalesce(jobs.c.started_at, now),
                lease_owner=self.id, lease_expires_at=now + self.lease)).rowcount
        if not taken:
            return None
        self._touched.add(job_id)
        with self.db.read() as conn:
            job = conn.execute(select(jobs.c.id, jobs.c.actor, jobs.c.actor_role)
                               .where(jobs.c.id == job_id)).one()
        try:  # the requester as the staff table has them now
            authorize(self.db, job_actor(job), Permission.EXPORT)
        except (OrdersError, ValueError) as error:
            return self._fail_job(job_id, f"Stopped: {error} (access withdrawn since "
                                          f"{job.actor} asked for this export)")
        with self._heartbeat.holding(job_id, items=False):
            try:
                from .export import export_orders  # written separately; only exports need it

                stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
                destination = self.settings.exports_dir / f"orders-job-{job_id}-{stamp}.csv"
                result = export_orders(self.db, destination, actor=job_actor(job), job_id=job_id)
            except Exception as error:  # noqa: BLE001 - the job fails with the reason
                log.exception("job #%d: the export failed", job_id)
                message = str(error) if isinstance(error, OrdersError) else \
                    f"{type(error).__name__}: {error}"
                return self._fail_job(job_id, f"The export failed: {message}")
            now = utcnow()
            with self.db.write() as conn:
                still_mine = conn.execute(update(jobs).where(
                    jobs.c.id == job_id, jobs.c.lease_owner == self.id,
                    jobs.c.status == JobStatus.RUNNING.value).values(
                    export_path=str(result.path), export_rows=int(result.rows),
                    export_bytes=int(getattr(result, "bytes", 0) or 0),
                    lease_owner=None, lease_expires_at=None)).rowcount
                if not still_mine:
                    log.warning("job #%d: lost the lease during the export; leaving the job "
                                "to the worker that took it over", job_id)
                    return 0
                count = conn.execute(update(job_items).where(
                    job_items.c.job_id == job_id, job_items.c.status == ITEM_PENDING).values(
                    status=ITEM_SUCCEEDED, worker=self.id, attempts=job_items.c.attempts + 1,
                    finished_at=now)).rowcount
                conn.execute(update(jobs).where(jobs.c.id == job_id).values(
                    succeeded=jobs.c.succeeded + count))
        self.processed += count
        self._finish(job_id)
        return count

    def _fail_job(self, job_id: int, message: str) -> int:
        """The job as a whole failed: its pending items fail with the message."""
        now = utcnow()
        with self.db.write() as conn:
            count = conn.execute(update(job_items).where(
                job_items.c.job_id == job_id, job_items.c.status == ITEM_PENDING).values(
                status=ITEM_FAILED, reason=message[:2000], worker=self.id, finished_at=now,
                lease_expires_at=None)).rowcount
            conn.execute(update(jobs).where(jobs.c.id == job_id).values(
                failed=jobs.c.failed + count, error=message[:4000], lease_owner=None,
                lease_expires_at=None))
        self._finish(job_id)
        return count

    # -- leases ---------------------------------------------------------------------------
    def _renew(self, job_id: int, items: bool) -> None:
        until = utcnow() + self.lease
        with self.db.write() as conn:
            if items:
                conn.execute(update(job_items).where(
                    job_items.c.job_id == job_id, job_items.c.worker == self.id,
                    job_items.c.status == ITEM_PENDING).values(lease_expires_at=until))
                conn.execute(update(jobs).where(
                    jobs.c.id == job_id, jobs.c.status == JobStatus.RUNNING.value).values(
                    lease_owner=self.id, lease_expires_at=until))
            else:
                conn.execute(update(jobs).where(
                    jobs.c.id == job_id, jobs.c.lease_owner == self.id).values(
                    lease_expires_at=until))


class _Heartbeat:
    """One thread per worker that renews the leases of the unit of work in hand (a
    chunk, or an export) every third of the lease, until told it is done."""

    def __init__(self, worker: Worker):
        self.worker = worker
        self.interval = max(0.2, worker.lease.total_seconds() / 3)
        self._lock = threading.Lock()  # held while renewing, so `holding` ends cleanly
        self._target: tuple[int, bool] | None = None
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def holding(self, job_id: int, *, items: bool):
        with self._lock:
            self._target = (job_id, items)
            if self._thread is None or not self._thread.is_alive():
                self._closed.clear()
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name=f"orders-lease-{self.worker.id}")
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
                    self.worker._renew(job_id, items)
                except Exception:  # noqa: BLE001 - try again at the next beat
                    log.warning("job #%d: could not renew the lease", job_id, exc_info=True)


def _backoff(tries: int, errors: list) -> float:
    delay = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (tries - 1))
    hints = [float(e.retry_after) for e in errors if getattr(e, "retry_after", None)]
    if hints:
        delay = max(delay, min(min(hints), 30.0))
    return delay


def _idle_wait(stop: threading.Event, seconds: float) -> None:
    """Sleep up to `seconds`, waking early when a job is queued in this process."""
    deadline = time.monotonic() + max(0.0, seconds)
    while not stop.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        if jobs_module.job_queued.wait(min(left, 0.2)):
            jobs_module.job_queued.clear()
            return


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]


# -- running a job from the CLI (--wait) ------------------------------------------------------
def run_job_here(db: Database, job_id: int, *, gateways: Gateways | None = None,
                 settings: Settings | None = None, stop: threading.Event | None = None,
                 poll_seconds: float = 0.2) -> JobView:
    """Work on job `job_id` in this process until it has finished, alongside any other
    workers (so it never hangs when none runs); returns the finished job. If `stop`
    is set first, returns the job as it stands."""
    stop = stop or threading.Event()
    worker = Worker(db, name=f"wait-{default_worker_name()}", gateways=gateways,
                    settings=settings)
    try:
        while True:
            job = read_job(db, job_id)
            if job.finished or stop.is_set():
                return job
            if worker.run_once(stop, job_id=job_id) == 0:
                job = read_job(db, job_id)
                if job.finished:
                    return job
                stop.wait(poll_seconds)  # others hold the remaining items
    finally:
        worker.release()
        worker.close()


# -- the embedded worker ----------------------------------------------------------------------
@dataclasses.dataclass
class _Embedded:
    thread: threading.Thread
    stop: threading.Event
    worker: "Worker | None" = None


_embedded: dict[tuple[int, str | None], _Embedded] = {}
_embedded_lock = threading.Lock()


def ensure_embedded_worker(database_url: str | None = None) -> None:
    """Start this process's background worker thread unless it runs already (cheap
    then; safe from any thread). ORDERS_EMBEDDED_WORKER=0 turns it off."""
    key = (os.getpid(), database_url)
    running = _embedded.get(key)
    if running is not None and running.thread.is_alive():
        return
    with _embedded_lock:
        running = _embedded.get(key)
        if running is not None and running.thread.is_alive():
            return
        if not load_settings().embedded_worker:
            return
        stop = threading.Event()
        thread = threading.Thread(target=_embedded_main, args=(database_url, stop), daemon=True,
                                  name="orders-embedded-worker")
        _embedded[key] = _Embedded(thread, stop)
        thread.start()


def stop_embedded_worker(timeout: float = 10.0) -> None:
    """Stop this process's embedded workers (tests; interpreter exit)."""
    with _embedded_lock:
        running = [e for (pid, _), e in _embedded.items() if pid == os.getpid()]
        _embedded.clear()
    for entry in running:
        entry.stop.set()
    for entry in running:
        entry.thread.join(timeout)


def embedded_worker_heartbeat_age(database_url: str | None = None) -> float | None:
    """Seconds since this process's embedded worker last looked for work (a chunk
    counts), or None when it does not run here."""
    running = _embedded.get((os.getpid(), database_url))
    if running is None or not running.thread.is_alive() or running.worker is None:
        return None
    return time.monotonic() - running.worker.last_beat


def _embedded_main(database_url: str | None, stop: threading.Event) -> None:
    entry = _embedded.get((os.getpid(), database_url))
    while not stop.is_set():
        try:
            db = open_database(database_url)
            worker = Worker(db, name=f"embedded-{default_worker_name()}")
            if entry is not None:
                entry.worker = worker
            worker.run_forever(stop)
        except Exception:  # noqa: BLE001 - keep the app's worker alive
            log.exception("embedded worker: unexpected failure; restarting")
            stop.wait(5.0)


atexit.register(stop_embedded_worker)


__all__ = ["Worker", "run_job_here", "ensure_embedded_worker", "stop_embedded_worker",
           "embedded_worker_heartbeat_age",
           "RateLimiter", "PacedGateways", "gateway_rate", "MAX_ITEM_ATTEMPTS"]
