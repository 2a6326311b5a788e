"""The ageing filter, "unfulfilled for more than N days": orders still Paid whose payment
is older than N days, the same in the order list, the tab counts, a bulk job's frozen
selection and the CLI; and totals in one currency's own units, the same everywhere."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from subprocess import CompletedProcess

from sqlalchemy import select, text

from orders_core import demo, jobs
from orders_core.clock import utcnow
from orders_core.job_engine import run_job_here
from orders_core.queries import OrderFilters, count_by_status, list_orders
from orders_core.schema import orders
from orders_core.staff import SYSTEM
from tests.support import cli_process


def ageing(db, days: int) -> set[str]:
    """What the filter must find, worked out in Python from every order."""
    cutoff = utcnow() - dt.timedelta(days=days)
    with db.read() as conn:
        rows = conn.execute(select(orders.c.number, orders.c.status, orders.c.paid_at)).all()
    return {r.number for r in rows if r.status == "paid" and r.paid_at is not None and r.paid_at < cutoff}


def test_the_list_and_the_counts_find_the_paid_orders_paid_more_than_n_days_ago(db):
    demo.seed(db, orders=400, random_seed=11)
    expected = ageing(db, 20)
    assert 0 < len(expected) < len(ageing(db, 0))  # the seed has old and recent payments
    filters = OrderFilters.parse(unfulfilled_days=20)
    page = list_orders(db, filters, actor=SYSTEM, page_size=500)
    assert {r["number"] for r in page.rows} == expected and page.total == len(expected)
    counts = count_by_status(db, filters, actor=SYSTEM)
    assert counts["paid"] == counts["all"] == len(expected)
    assert {s: n for s, n in counts.items() if s not in ("paid", "all") and n} == {}
    on_paid_tab = list_orders(db, filters.with_status(filters.status), actor=SYSTEM, page_size=500)
    assert on_paid_tab.total == len(expected)


def test_a_bulk_fulfil_of_the_ageing_view_freezes_exactly_those_orders(db):
    demo.seed(db, orders=300, random_seed=12)
    expected = ageing(db, 30)
    filters = OrderFilters.parse(status="paid", unfulfilled_days=30)
    preflight = jobs.preflight(db, SYSTEM, "fulfill", filters=filters)
    assert preflight.eligible == len(expected) and not preflight.ineligible
    job = jobs.enqueue(db, SYSTEM, "fulfill", filters=filters)
    assert job.total == len(expected)
    assert "unfulfilled for more than 30 days" in job.selection
    finished = run_job_here(db, job.id)
    assert finished.succeeded == len(expected) and finished.failed == 0
    with db.read() as conn:
        statuses = dict(
            conn.execute(select(orders.c.number, orders.c.status).where(orders.c.number.in_(expected))).all()
        )
    assert set(statuses.values()) == {"fulfilled"}
    assert ageing(db, 30) == set()  # the ageing view is empty now


def test_on_sqlite_the_ageing_filter_reads_a_range_of_the_status_index(sqlite_db):
    demo.seed(sqlite_db, orders=50, random_seed=13)
    filters = OrderFilters.parse(status="paid", unfulfilled_days=7)
    query = select(orders.c.id).where(*filters.conditions(dialect="sqlite"))
    compiled = query.compile(sqlite_db.engine, compile_kwargs={"literal_binds": True})
    with sqlite_db.read() as conn:
        plan = " ".join(str(r[-1]) for r in conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
    assert "ix_orders_status_created_total (status=? AND created_at<?)" in plan, plan


def test_totals_are_in_the_chosen_currencys_units_and_keep_to_that_currency(db):
    demo.seed(db, orders=300, random_seed=14)
    with db.read() as conn:
        rows = conn.execute(select(orders.c.number, orders.c.total_amount, orders.c.currency)).all()
    yen = OrderFilters.parse(currency="jpy", min_total="3,000")
    page = list_orders(db, yen, actor=SYSTEM, page_size=500)
    assert {r["number"] for r in page.rows} == {
        r.number for r in rows if r.currency == "jpy" and r.total_amount >= 3000
    }
    dollars = OrderFilters.parse(currency="usd", min_total="30", max_total="80.50")
    page = list_orders(db, dollars, actor=SYSTEM, page_size=500)
    assert {r["number"] for r in page.rows} == {
        r.number for r in rows if r.currency == "usd" and 3000 <= r.total_amount <= 8050
    }
    euros = count_by_status(db, OrderFilters.parse(currency="eur"), actor=SYSTEM)
    assert euros["all"] == sum(1 for r in rows if r.currency == "eur")


def _cli(database_url: str, data_dir: Path, *args: str) -> CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORDERS_", "STRIPE_"))}
    env.update(
        ORDERS_DATA_DIR=str(data_dir),
        ORDERS_DATABASE_URL=database_url,
        ORDERS_PAYMENT_GATEWAY="simulated",
        PYTHONPATH=str(cli_process.REPO_ROOT),
    )
    return cli_process.run(env, *args)


def test_the_cli_lists_and_bulk_fulfils_the_ageing_view(sqlite_database_url, sqlite_db, tmp_path):
    demo.seed(sqlite_db, orders=200, random_seed=15)
    expected = ageing(sqlite_db, 25)
    listed = _cli(
        sqlite_database_url, tmp_path, "orders", "--unfulfilled-days", "25", "--limit", "500", "--json"
    )
    assert listed.returncode == 0, listed.stderr
    assert {r["number"] for r in json.loads(listed.stdout)} == expected
    shown = _cli(sqlite_database_url, tmp_path, "orders", "--unfulfilled-days", "25")
    assert "unfulfilled for more than 25 days" in shown.stdout
    queued = _cli(
        sqlite_database_url,
        tmp_path,
        "bulk",
        "fulfill",
        "--status",
        "paid",
        "--unfulfilled-days",
        "25",
        "--wait",
        "--json",
    )
    assert queued.returncode == 0, queued.stderr
    job = json.loads(queued.stdout)
    assert job["total"] == job["succeeded"] == len(expected)
    assert ageing(sqlite_db, 25) == set()


def test_the_cli_reads_totals_in_the_currencys_units(sqlite_database_url, sqlite_db, tmp_path):
    demo.seed(sqlite_db, orders=100, random_seed=16)
    with sqlite_db.read() as conn:
        rows = conn.execute(select(orders.c.number, orders.c.total_amount, orders.c.currency)).all()
    listed = _cli(
        sqlite_database_url,
        tmp_path,
        *("orders", "--currency", "USD", "--min-total", "19.99", "--limit", "500", "--json"),
    )
    assert listed.returncode == 0, listed.stderr
    assert {r["number"] for r in json.loads(listed.stdout)} == {
        r.number for r in rows if r.currency == "usd" and r.total_amount >= 1999
    }
    refused = _cli(sqlite_database_url, tmp_path, "orders", "--currency", "usd", "--min-total", "1,000.505")
    assert refused.returncode == 1
    assert refused.stderr == (
        "error: Min total: '1,000.505' has too many decimals; USD amounts take at most 2 decimals.\n"
    )


def _plan(db, query) -> str:
    compiled = query.compile(db.engine, compile_kwargs={"literal_binds": True})
    with db.read() as conn:
        return " | ".join(str(r[-1]) for r in conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))


def test_on_sqlite_a_currencys_totals_are_counted_from_one_index_and_paged_in_order(sqlite_db):
    from sqlalchemy import func

    demo.seed(sqlite_db, orders=50, random_seed=17)
    filters = OrderFilters.parse(status="paid", currency="usd", min_total="50")
    counted = _plan(sqlite_db, select(func.count()).select_from(orders).where(*filters._planned(sqlite_db)))
    assert "COVERING INDEX ix_orders_currency_status_total" in counted, counted
    paged = _plan(
        sqlite_db,
        select(orders.c.id)
        .where(*filters._planned(sqlite_db, page=True))
        .order_by(orders.c.created_at.desc(), orders.c.id.desc())
        .limit(50),
    )
    assert "ix_orders_status_created_total" in paged and "ix_orders_currency" not in paged, paged
