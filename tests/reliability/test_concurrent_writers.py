"""Promise 2: concurrent writers lose nothing.

Four kinds of writer run at once as real processes for a bounded time
(`tests/reliability/concurrent_actor.py`): checkouts, single cancels / fulfils /
returns, bulk jobs asked for by ops, and workers. Afterwards one more worker drains
the queue and the books must agree: no writer saw an error other than a business
refusal (above all no "database is locked"), every job item was claimed exactly once
and ended succeeded or failed, every job's counts add up, every order's status is the
end of its chain of status events, and our refunds agree with the gateway's ledger.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from orders_core import demo, order_counts
from orders_core.db import Database, open_database
from orders_core.job_engine import Worker
from orders_core.schema import (
    job_items,
    jobs,
    order_events,
    orders,
    payments,
    refunds,
    sim_charges,
    sim_refunds,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
SECONDS = 8
OVERRUN = 60  # a process still running this long after SECONDS is killed and fails the test


def actor_env(database_url: str, data_dir: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("ORDERS_", "STRIPE_")) and k != "PYTHONPATH"
    }
    env.update(
        ORDERS_DATABASE_URL=database_url,
        ORDERS_DATA_DIR=str(data_dir),
        ORDERS_PAYMENT_GATEWAY="simulated",
        ORDERS_EMBEDDED_WORKER="0",
        ORDERS_PAYMENT_LEASE_SECONDS="5",
        ORDERS_JOB_LEASE_SECONDS="3",
        PYTHONPATH=str(REPO_ROOT),
        PYTHONUNBUFFERED="1",
    )
    return env


def run_writers(database_url: str, tmp_path: Path, roles: list[str]) -> list[dict]:
    """Start one process per role at once; wait (bounded); return their JSON summaries."""
    env = actor_env(database_url, tmp_path)
    procs = []
    try:
        for i, role in enumerate(roles):
            out = open(tmp_path / f"{i}-{role}.out", "w")  # noqa: SIM115 - the child process writes it
            err = open(tmp_path / f"{i}-{role}.err", "w")  # noqa: SIM115 - the child process writes it
            procs.append(
                (
                    role,
                    i,
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "tests.reliability.concurrent_actor",
                            role,
                            str(SECONDS),
                            str(100 + i),
                        ],
                        cwd=REPO_ROOT,
                        env=env,
                        stdout=out,
                        stderr=err,
                    ),
                )
            )
            out.close()
            err.close()
        deadline = time.monotonic() + SECONDS + OVERRUN
        for role, _, proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pytest.fail(f"the {role} writer overran its {SECONDS} s by more than {OVERRUN} s")
    finally:
        for _, _, proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    summaries = []
    for role, i, proc in procs:
        out = (tmp_path / f"{i}-{role}.out").read_text().strip().splitlines()
        err = (tmp_path / f"{i}-{role}.err").read_text()[-3000:]
        assert proc.returncode == 0 and out, f"the {role} writer crashed (exit {proc.returncode}):\n{err}"
        summaries.append(json.loads(out[-1]))
    return summaries


def assert_nothing_was_lost(db: Database, summaries: list[dict]) -> None:
    # Writers: only business refusals, never "database is locked" or any other error.
    unexpected = [(s["role"], u) for s in summaries for u in s["unexpected"]]
    assert not unexpected, json.dumps(unexpected, indent=1)[:6000]
    by_role = collections.defaultdict(lambda: collections.Counter())
    for s in summaries:
        by_role[s["role"]].update(ok=s["ok"], refused=s["refused"], declined=s["declined"])
    # They all did real work at the same time (else the test proves nothing).
    assert by_role["checkout"]["ok"] >= 5, summaries
    assert by_role["bulk"]["ok"] >= 3, summaries
    if "single" in by_role:
        assert by_role["single"]["ok"] >= 5, summaries

    # The queue is drained: one more worker processes what was asked for at the end.
    Worker(db, name="drain").run_once()

    with db.read() as conn:
        # Job items: none left pending, every one claimed exactly once.
        items = conn.execute(
            select(job_items.c.job_id, job_items.c.status, job_items.c.attempts, func.count()).group_by(
                job_items.c.job_id, job_items.c.status, job_items.c.attempts
            )
        ).all()
        job_rows = conn.execute(select(jobs)).all()
        by_writer_workers = conn.execute(
            select(func.count()).select_from(job_items).where(job_items.c.worker.like("cw-%"))
        ).scalar_one()
        # Orders, their status chains, refunds, payments and the gateway's ledger.
        order_rows = {
            r.id: r
            for r in conn.execute(
                select(
                    orders.c.id,
                    orders.c.number,
                    orders.c.status,
                    orders.c.total_amount,
                    orders.c.refunded_amount,
                    orders.c.checkout_key,
                )
            )
        }
        chains = collections.defaultdict(list)
        for e in conn.execute(
            select(order_events.c.order_id, order_events.c.from_status, order_events.c.to_status)
            .where(order_events.c.to_status.is_not(None))
            .order_by(order_events.c.id)
        ):
            chains[e.order_id].append((e.from_status, e.to_status))
        refunded = dict(
            conn.execute(
                select(refunds.c.order_id, func.sum(refunds.c.amount))
                .where(refunds.c.status == "succeeded")
                .group_by(refunds.c.order_id)
            ).all()
        )
        unsettled = (
            conn.execute(
                select(func.count()).select_from(refunds).where(refunds.c.status == "pending")
            ).scalar_one()
            + conn.execute(
                select(func.count()).select_from(payments).where(payments.c.status == "pending")
            ).scalar_one()
        )
        succeeded_payments = conn.execute(
            select(payments.c.order_id, payments.c.gateway_payment_id).where(payments.c.status == "succeeded")
        ).all()
        charges_by_order = dict(
            conn.execute(
                select(sim_charges.c.reference, func.count())
                .where(sim_charges.c.status == "succeeded")
                .group_by(sim_charges.c.reference)
            ).all()
        )
        paid_back = dict(
            conn.execute(
                select(sim_refunds.c.charge_id, func.sum(sim_refunds.c.amount)).group_by(
                    sim_refunds.c.charge_id
                )
            ).all()
        )

    assert job_rows, "no job was asked for"
    assert by_writer_workers > 0, "the worker processes processed nothing while the others wrote"
    pending = [r for r in items if r.status not in ("succeeded", "failed")]
    assert not pending, f"job items left unfinished: {pending}"
    claimed_twice = [r for r in items if r.attempts != 1]
    assert not claimed_twice, (
        f"job items not claimed exactly once (job, status, attempts, n): {claimed_twice}"
    )

    # Every job's counts add up, and agree with its items.
    per_job = collections.defaultdict(collections.Counter)
    for r in items:
        per_job[r.job_id][r.status] += r[3]
    for job in job_rows:
        counted = per_job[job.id]
        assert job.status not in ("queued", "running"), (job.id, job.status)
        assert (job.total, job.succeeded, job.failed) == (
            counted["succeeded"] + counted["failed"],
            counted["succeeded"],
            counted["failed"],
        ), (job.id, job.status, job.total, job.succeeded, job.failed, dict(counted))

    # Every status change has exactly one event, chained from created to the status now.
    broken = []
    for oid, o in order_rows.items():
        chain = chains.get(oid, [])
        expected_from = [None] + [to for _, to in chain[:-1]]
        if not chain or [f for f, _ in chain] != expected_from or chain[-1][1] != o.status:
            broken.append((o.number, o.status, chain))
    assert not broken, f"{len(broken)} orders whose status events do not chain: {broken[:5]}"

    # Refunds: never more than paid, equal to our succeeded refunds and to the ledger's.
    assert unsettled == 0, "a payment or refund was left pending"
    wrong = [
        (o.number, o.total_amount, o.refunded_amount, refunded.get(oid, 0))
        for oid, o in order_rows.items()
        if not (0 <= o.refunded_amount <= o.total_amount) or o.refunded_amount != refunded.get(oid, 0)
    ]
    assert not wrong, f"refunded_amount disagrees with our refunds: {wrong[:5]}"
    paid_orders = collections.Counter(p.order_id for p in succeeded_payments)
    assert all(n == 1 for n in paid_orders.values()), "an order has two succeeded payments"
    ledger = [
        (
            order_rows[p.order_id].number,
            order_rows[p.order_id].refunded_amount,
            paid_back.get(p.gateway_payment_id, 0),
        )
        for p in succeeded_payments
        if paid_back.get(p.gateway_payment_id, 0) != order_rows[p.order_id].refunded_amount
    ]
    assert not ledger, f"the gateway paid back other amounts than our books say: {ledger[:5]}"
    assert set(paid_back) <= {p.gateway_payment_id for p in succeeded_payments}, (
        "the gateway refunded a charge we have no succeeded payment for"
    )
    twice = {ref: n for ref, n in charges_by_order.items() if n > 1}
    assert not twice, f"orders charged more than once at the gateway: {twice}"
    for oid, o in order_rows.items():
        if o.status in ("canceled", "returned") and paid_orders[oid]:
            assert o.refunded_amount == o.total_amount, (o.number, o.status, o.refunded_amount)

    # Checkouts: one order per attempt that got as far as the gateway, paid when it said ok.
    ours = [o for o in order_rows.values() if (o.checkout_key or "").startswith("cw-")]
    checkout = by_role["checkout"]
    assert len(ours) == checkout["ok"] + checkout["declined"], (len(ours), checkout)
    assert sum(1 for o in ours if paid_orders[o.id]) == checkout["ok"], checkout

    # The tab counts the database keeps with the orders agree with counting them, and each
    # order's SKU rows (order_skus) with its orders and items.
    assert order_counts.mismatches(db) == []
    assert order_counts.sku_row_mismatches(db) == []


@pytest.mark.slow
@pytest.mark.quiet_sql
def test_four_writer_processes_on_sqlite_lose_nothing_and_never_see_database_is_locked(
    sqlite_database_url, tmp_path
):
    db = open_database(sqlite_database_url)
    demo.seed(db, orders=400, random_seed=21)
    summaries = run_writers(sqlite_database_url, tmp_path, ["checkout", "single", "bulk", "worker"])
    assert_nothing_was_lost(db, summaries)


@pytest.mark.slow
@pytest.mark.quiet_sql
@pytest.mark.postgres
def test_several_workers_checkouts_and_bulk_jobs_on_postgresql_lose_nothing(postgres_database_url, tmp_path):
    db = open_database(postgres_database_url)
    demo.seed(db, orders=400, random_seed=22)
    summaries = run_writers(postgres_database_url, tmp_path, ["worker", "worker", "checkout", "bulk"])
    assert_nothing_was_lost(db, summaries)
