"""Real worker processes (`python -m orders_core worker`): killed with SIGKILL in the
middle of a Cancel job, stopped with SIGTERM, and several of them sharing one job on
PostgreSQL. Correctness is checked in the ledgers (the simulated gateway's own books,
the refunds table, the orders' timelines and the job items' claim counts), never by
timing; every wait is bounded and says what it was waiting for.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import and_, func, literal_column, select

from orders_core import demo, jobs
from orders_core.queries import OrderFilters
from orders_core.schema import job_items, order_events, orders, payments, refunds, sim_charges, sim_refunds
from orders_core.staff import SYSTEM

REPO_ROOT = Path(__file__).resolve().parents[2]
LEASE_SECONDS = "2"


def worker_env(database_url: str, data_dir: Path, **settings: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("ORDERS_", "STRIPE_")) and k != "PYTHONPATH"
    }
    env.update(
        ORDERS_DATABASE_URL=database_url,
        ORDERS_DATA_DIR=str(data_dir),
        ORDERS_PAYMENT_GATEWAY="simulated",
        ORDERS_EMBEDDED_WORKER="0",
        ORDERS_JOB_LEASE_SECONDS=LEASE_SECONDS,
        ORDERS_PAYMENT_LEASE_SECONDS=LEASE_SECONDS,
        PYTHONPATH=str(REPO_ROOT),
        PYTHONUNBUFFERED="1",
    )
    env.update(settings)
    return env


class Workers:
    """Worker processes started by a test; whatever is left is killed at the end."""

    def __init__(self, env: dict[str, str], log_dir: Path):
        self.env, self.log_dir, self.procs = env, log_dir, {}

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "w")  # noqa: SIM115 - the child process writes it
        proc = subprocess.Popen(
            [sys.executable, "-m", "orders_core", "worker", "--name", name, *args],
            cwd=REPO_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        return (self.log_dir / f"{name}.log").read_text(errors="replace")

    def logs(self) -> str:
        return "\n".join(
            f"--- {name} (exit {p.poll()}) ---\n{self.log(name)[-3000:]}" for name, p in self.procs.items()
        )

    def stop(self, name: str, timeout: float = 30) -> int:
        proc = self.procs[name]
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"worker {name} did not stop within {timeout} s of SIGTERM\n{self.logs()}")

    def kill_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait()


def wait_until(condition, timeout: float, what: str, workers: Workers) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {timeout} s waiting for {what}\n{workers.logs()}")
        time.sleep(0.05)


def refund_ledger(db, job_id: int) -> list:
    """Per order of the job: its item, its status, what it cost, what our books say was
    refunded, and what the gateway's own books paid back (count and sum)."""
    paid_back = (
        select(
            sim_refunds.c.charge_id, func.count().label("n"), func.sum(sim_refunds.c.amount).label("amount")
        )
        .group_by(sim_refunds.c.charge_id)
        .subquery()
    )
    query = (
        select(
            job_items.c.order_number,
            job_items.c.status.label("item"),
            orders.c.status,
            orders.c.total_amount,
            orders.c.refunded_amount,
            func.coalesce(paid_back.c.n, 0).label("gateway_refunds"),
            func.coalesce(paid_back.c.amount, 0).label("gateway_amount"),
        )
        .join(orders, orders.c.id == job_items.c.order_id)
        .join(payments, and_(payments.c.order_id == orders.c.id, payments.c.status == "succeeded"))
        .join(sim_charges, sim_charges.c.id == payments.c.gateway_payment_id)
        .outerjoin(paid_back, paid_back.c.charge_id == sim_charges.c.id)
        .where(job_items.c.job_id == job_id)
        .order_by(job_items.c.seq)
    )
    with db.read() as conn:
        return conn.execute(query).all()


def assert_each_order_refunded_exactly_once(db, job_id: int) -> None:
    rows = refund_ledger(db, job_id)
    assert len(rows) == jobs.get_job(db, job_id, actor=SYSTEM).total
    assert not [r for r in rows if r.item == "pending"], "items left pending"
    for r in rows:
        if r.item == "succeeded":
            assert (r.status, r.gateway_refunds, r.gateway_amount, r.refunded_amount) == (
                "canceled",
                1,
                r.total_amount,
                r.total_amount,
            ), r
        else:
            assert (r.status, r.gateway_refunds, r.refunded_amount) == ("paid", 0, 0), r
    with db.read() as conn:
        ours = conn.execute(
            select(refunds.c.status, func.count())
            .where(refunds.c.job_id == job_id)
            .group_by(refunds.c.status)
        ).all()
        moves = conn.execute(
            select(order_events.c.order_id, func.count())
            .where(order_events.c.job_id == job_id, order_events.c.action == "cancel")
            .group_by(order_events.c.order_id)
            .having(func.count() > 1)
        ).all()
    succeeded = sum(1 for r in rows if r.item == "succeeded")
    assert dict(ours) == {"succeeded": succeeded}, "a refund row is pending, failed or doubled"
    assert moves == [], "an order was moved twice by the job"


def held_by(db, job_id: int, worker_prefix: str) -> int:
    """How many of the job's pending items a worker whose id starts so holds a lease on."""
    with db.read() as conn:
        return conn.execute(
            select(func.count())
            .select_from(job_items)
            .where(
                job_items.c.job_id == job_id,
                job_items.c.worker.like(f"{worker_prefix}%"),
                job_items.c.status == "pending",
                job_items.c.lease_expires_at.is_not(None),
            )
        ).scalar_one()


@pytest.mark.slow
def test_a_worker_killed_mid_cancel_then_others_finish_and_every_order_is_refunded_once(
    sqlite_db, sqlite_database_url, tmp_path
):
    demo.seed(sqlite_db, orders=1300, random_seed=11)
    job = jobs.enqueue(sqlite_db, SYSTEM, "cancel", filters=OrderFilters.parse(status="paid"))
    assert job.total >= 300, job.total
    # Paced so the job lasts a few seconds: the kill lands in the middle of it.
    workers = Workers(
        worker_env(
            sqlite_database_url,
            tmp_path,
            ORDERS_JOB_CHUNK_SIZE="20",
            ORDERS_REFUND_CONCURRENCY="4",
            ORDERS_GATEWAY_RPS="300",
        ),
        tmp_path,
    )
    progress = lambda: jobs.get_job(sqlite_db, job.id, actor=SYSTEM)  # noqa: E731
    try:
        workers.start("first")
        # Killed while it holds a chunk (a busy machine may pause it between two chunks).
        wait_until(
            lambda: progress().succeeded >= 40 and held_by(sqlite_db, job.id, "first/"),
            60,
            "the first worker to cancel 40 orders and hold a chunk",
            workers,
        )
        workers.procs["first"].kill()  # SIGKILL: no cleanup, its leases and refunds stay held
        workers.procs["first"].wait(10)
        killed_at = progress()
        assert not killed_at.finished and killed_at.pending > 0, (
            f"the first worker finished before it was killed: {killed_at}"
        )
        assert killed_at.lease_owner and killed_at.lease_owner.startswith("first/")

        workers.start("second")
        wait_until(
            lambda: progress().succeeded >= killed_at.succeeded + 40 or progress().finished,
            60,
            "the second worker to cancel 40 more orders",
            workers,
        )
        assert workers.stop("second") == 0  # SIGTERM: finish the chunk, release, exit 0
        stopped_at = progress()
        assert "SIGTERM; stopping after the current chunk" in workers.log("second")
        assert held_by(sqlite_db, job.id, "second/") == 0, (
            "the stopped worker kept leases on items it did not finish"
        )
        assert stopped_at.lease_owner is None or not stopped_at.lease_owner.startswith("second/")

        workers.start("third")
        wait_until(lambda: progress().finished, 90, "the job to finish", workers)
        assert workers.stop("third") == 0
    finally:
        workers.kill_all()

    done = progress()
    assert (done.status, done.pending, done.succeeded + done.failed) == ("completed", 0, job.total), (
        done,
        jobs.job_failures(sqlite_db, job.id, limit=5, actor=SYSTEM),
    )
    assert_each_order_refunded_exactly_once(sqlite_db, job.id)
    with sqlite_db.read() as conn:
        by_worker = dict(
            conn.execute(
                select(func.substr(job_items.c.worker, 1, 5), func.count())
                .where(job_items.c.job_id == job.id)
                .group_by(func.substr(job_items.c.worker, 1, 5))
            ).all()
        )
        reclaimed = conn.execute(
            select(func.count())
            .select_from(job_items)
            .where(job_items.c.job_id == job.id, job_items.c.attempts > 1)
        ).scalar_one()
    assert by_worker.get("secon") and by_worker.get("third"), by_worker
    assert reclaimed > 0, "no item held by the killed worker was taken over"


@pytest.mark.slow
@pytest.mark.postgres
def test_several_workers_share_jobs_on_postgresql_and_no_item_is_processed_twice(
    postgres_db, postgres_database_url, tmp_path
):
    workers = Workers(
        worker_env(
            postgres_database_url, tmp_path, ORDERS_JOB_CHUNK_SIZE="25", ORDERS_REFUND_CONCURRENCY="2"
        ),
        tmp_path,
    )
    names = ["pg-a", "pg-b", "pg-c"]
    try:
        for name in names:
            workers.start(name, "--poll", "0.1")
        demo.seed(postgres_db, orders=8000, random_seed=5)
        with postgres_db.read() as conn:
            paid = (
                conn.execute(select(orders.c.number).where(orders.c.status == "paid").order_by(orders.c.id))
                .scalars()
                .all()
            )
        assert len(paid) >= 1500, len(paid)
        wait_until(
            lambda: all(": started" in workers.log(n) for n in names),
            60,
            "the three workers to start",
            workers,
        )
        # Two jobs at once: refunds through the gateway, and a set-based move of thousands.
        cancel = jobs.enqueue(postgres_db, SYSTEM, "cancel", order_numbers=paid[:150])
        fulfill = jobs.enqueue(postgres_db, SYSTEM, "fulfill", order_numbers=paid[150:])
        wait_until(
            lambda: (
                jobs.get_job(postgres_db, cancel.id, actor=SYSTEM).finished
                and jobs.get_job(postgres_db, fulfill.id, actor=SYSTEM).finished
            ),
            120,
            "both jobs to finish",
            workers,
        )
        for name in names:
            assert workers.stop(name) == 0, workers.logs()
    finally:
        workers.kill_all()

    worker_name = func.split_part(job_items.c.worker, literal_column("'/'"), literal_column("1"))
    for job in (cancel, fulfill):
        done = jobs.get_job(postgres_db, job.id, actor=SYSTEM)
        assert (done.status, done.succeeded, done.pending) == ("completed", job.total, 0), done
        with postgres_db.read() as conn:
            claims = dict(
                conn.execute(
                    select(job_items.c.attempts, func.count())
                    .where(job_items.c.job_id == job.id)
                    .group_by(job_items.c.attempts)
                ).all()
            )
            by_worker = dict(
                conn.execute(
                    select(worker_name, func.count())
                    .where(job_items.c.job_id == job.id)
                    .group_by(worker_name)
                ).all()
            )
            moved = dict(
                conn.execute(
                    select(func.count(), func.count(order_events.c.order_id.distinct())).where(
                        order_events.c.job_id == job.id, order_events.c.action == job.action
                    )
                ).all()
            )
        # Every item was claimed exactly once, by one of the workers, and they shared the job;
        # every order was moved exactly once (one event per order in its timeline).
        assert claims == {1: job.total}, claims
        assert set(by_worker) <= set(names) and sum(by_worker.values()) == job.total, by_worker
        assert len(by_worker) >= 2, f"only {by_worker} worked on job #{job.id}; it was not shared"
        assert moved == {job.total: job.total}, moved
    assert_each_order_refunded_exactly_once(postgres_db, cancel.id)
