"""The worker loop: find a job with work left, claim a unit of it (a chunk of a move
job, or an export), run it, record it; over and over until told to stop.

- Cancelling is cooperative: a worker claims no new chunk of a job whose cancel was
  asked for; the last one to let go closes the job as canceled.
- Stopping (SIGTERM to a standalone `python -m orders_core worker`): the current chunk
  is finished and recorded, the leases are released, and the worker returns.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import socket
import threading
import time

from sqlalchemy import select

from .. import jobs as jobs_module
from ..config import Settings, load_settings
from ..db import Database
from ..jobs import ACTIVE_STATUSES, JobAction, JobView, finish_if_done, read_job
from ..payments import Gateways
from ..schema import jobs
from ..stripe_events import process_pending_events
from .claims import Claim, Heartbeat, Leases
from .exports import run_export_job
from .moves import REFUNDING, ChunkMover, Results, record_chunk
from .pacing import GatewayCallPool, PacedGateways, move_chunk_size, refund_batch_size
from .plain_moves import PlainChunks, plain_move
from .reconciliations import run_reconcile_job

log = logging.getLogger("orders_core.worker")


def default_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Worker:
    """Runs queued jobs. One per thread; several per database (and per job) are fine."""

    def __init__(
        self,
        db: Database,
        *,
        name: str | None = None,
        gateways: Gateways | None = None,
        settings: Settings | None = None,
        retry_budget_seconds: float | None = None,
    ):
        self.db = db
        self.settings = settings or load_settings()
        self.name = name or default_worker_name()
        # The identity claims are stamped with: unique even if two workers share a name.
        self.id = f"{self.name[:110]}/{secrets.token_hex(4)}"
        self.gateways = PacedGateways(gateways or Gateways(db, self.settings), self.settings)
        self.lease = dt.timedelta(seconds=max(1, self.settings.job_lease_seconds))
        self.chunk_size = max(1, self.settings.job_chunk_size)
        self.leases = Leases(db, self.id, self.lease)
        self.plain_chunks = PlainChunks(self.leases, self.settings.job_move_concurrency)
        self.gateway_calls = GatewayCallPool(self.settings.refund_concurrency)
        # How long a chunk keeps retrying transient failures before failing those items
        # (long enough for another process's refund lease to run out).
        retry_budget = (
            float(retry_budget_seconds)
            if retry_budget_seconds is not None
            else max(30.0, self.settings.payment_lease_seconds + 10.0)
        )
        self.mover = ChunkMover(
            db,
            self.gateways,
            self.gateway_calls,
            refund_batch_size(self.settings, self.chunk_size),
            retry_budget,
        )
        self.processed = 0
        self.last_beat = time.monotonic()  # for /readyz: when it last looked for work
        self._stop = threading.Event()
        self._heartbeat = Heartbeat(
            self.leases.renew,
            interval=max(0.2, self.lease.total_seconds() / 3),
            name=f"orders-lease-{self.id}",
        )

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
        self.gateway_calls.close()
        self.plain_chunks.close()

    def release(self) -> None:
        """Give up this worker's leases now (the items stay pending for others)."""
        self.leases.release_all()

    def _step(self, only_job: int | None) -> int | None:
        """Claim and do one unit of work; None when nothing is claimable."""
        if only_job is None:
            # Stripe's events first: they are few and small, and a payment they settle
            # may be what a queued job's order is waiting for.
            events = process_pending_events(self.db, self.gateways, limit=50, stop=self._stop)
            if events:
                return events
        query = (
            select(jobs.c.id, jobs.c.action, jobs.c.cancel_requested)
            .where(jobs.c.status.in_(ACTIVE_STATUSES))
            .order_by(jobs.c.id)
            .limit(50)
        )
        if only_job is not None:
            query = query.where(jobs.c.id == only_job)
        with self.db.read() as conn:
            candidates = conn.execute(query).all()
        for job in candidates:
            if self._stop.is_set():
                return None
            if job.cancel_requested:
                self._finish(job.id)
                continue
            if job.action == JobAction.EXPORT.value:
                done = self._export(job.id)
            elif job.action == JobAction.RECONCILE.value:
                done = self._reconcile(job.id)
            else:
                done = self._move_chunk(job.id, job.action)
            if done is not None:
                return done
            self._finish(job.id)
        return None

    def _move_chunk(self, job_id: int, action: str) -> int | None:
        """One chunk of a move job; None when nothing of it is claimable. A move without
        refunds goes set-based first (plain_moves.py); ChunkMover does the rest."""
        size = self.move_chunk_size(action)
        plain = plain_move(JobAction(action).move)
        chunks = self.plain_chunks.run_many(job_id, plain, size) if plain is not None else None
        if chunks is None:
            claim = self.leases.claim_chunk(job_id, size)
            return None if claim is None else self._process(claim)
        if not any(chunk.claimed for chunk in chunks):
            return None
        moved = sum(chunk.moved for chunk in chunks)
        self.processed += moved
        return moved + sum(self._process(chunk.rest) for chunk in chunks if chunk.rest is not None)

    def move_chunk_size(self, action: str) -> int:
        refunds = JobAction(action).move in REFUNDING
        return move_chunk_size(self.settings, self.chunk_size, refunds)

    def _finish(self, job_id: int) -> None:
        status = finish_if_done(self.db, job_id)
        if status:
            log.info("job #%d %s", job_id, status)

    def _process(self, claim: Claim) -> int:
        failure: Exception | None = None
        with self._heartbeat.holding(claim.job_id, items=True):
            try:
                done, released = self.mover.move(claim, self._stop)
            except Exception as error:  # noqa: BLE001 - recorded, retried, then given up
                failure = error
        # Recorded with the heartbeat paused: on PostgreSQL the renewal and the record
        # would otherwise lock the same item rows in different orders (a deadlock).
        if failure is not None:
            log.error(
                "job #%d: a chunk failed; its items will be tried again", claim.job_id, exc_info=failure
            )
            self.leases.release_chunk(claim, f"{type(failure).__name__}: {failure}")
            self._stop.wait(1.0)
            return 0
        recorded = self._record_chunk(claim, done, released)
        self.processed += recorded
        return recorded  # the job is closed by the step that finds nothing left to claim

    def _record_chunk(self, claim: Claim, done: Results, released: list[int]) -> int:
        return record_chunk(self.db, self.id, claim, done, released)

    def _export(self, job_id: int) -> int | None:
        if not self.leases.claim_export(job_id):
            return None
        outcome = run_export_job(self.db, self.id, job_id, self.settings, self._heartbeat)
        if outcome.exported:
            self.processed += outcome.items
        self._finish(job_id)
        return outcome.items

    def _reconcile(self, job_id: int) -> int | None:
        if not self.leases.claim_reconciliation(job_id):
            return None
        outcome = run_reconcile_job(self.db, self.id, job_id, self.gateways, self._heartbeat)
        self.processed += outcome.items
        self._finish(job_id)
        return outcome.items


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


def run_job_here(
    db: Database,
    job_id: int,
    *,
    gateways: Gateways | None = None,
    settings: Settings | None = None,
    stop: threading.Event | None = None,
    poll_seconds: float = 0.2,
) -> JobView:
    """Work on job `job_id` in this process until it has finished, alongside any other
    workers (so it never hangs when none runs; the CLI's --wait); returns the finished
    job. If `stop` is set first, returns the job as it stands."""
    stop = stop or threading.Event()
    worker = Worker(db, name=f"wait-{default_worker_name()}", gateways=gateways, settings=settings)
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
