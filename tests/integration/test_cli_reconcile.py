"""`python -m orders_core reconcile`, run for real as a subprocess on a database the
test seeds: the report on stdout (text and --json), the CSV, and the exit code a
script acts on (0 the books agree, 4 mismatches, 1 could not reconcile, 2 bad usage)."""

from __future__ import annotations

import csv
import io
import json
import os
from subprocess import CompletedProcess

import pytest
from sqlalchemy import update

from orders_core.checkout import place_order
from orders_core.clock import utcnow
from orders_core.schema import orders
from tests.support import cli_process


@pytest.fixture
def run_cli(sqlite_database_url, tmp_path):
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("ORDERS_", "STRIPE_")) and k != "PYTHONPATH"
    }
    env.update(
        ORDERS_DATA_DIR=str(tmp_path),
        ORDERS_DATABASE_URL=sqlite_database_url,
        ORDERS_PAYMENT_GATEWAY="simulated",
        PYTHONPATH=str(cli_process.REPO_ROOT),
        PYTHONIOENCODING="utf-8",
    )

    def run(*args: str) -> CompletedProcess:
        return cli_process.run(env, "reconcile", *args)

    return run


@pytest.fixture
def db(sqlite_db):
    return sqlite_db


@pytest.fixture
def paid(db, customer):
    return [place_order(db, customer, items=[("PASS-USD", n)], token="tok_visa").number for n in (1, 2)]


def today() -> str:
    return utcnow().date().isoformat()


def test_clean_books_exit_0_and_say_so(run_cli, paid):
    result = run_cli("--from", today(), "--to", today())

    assert result.returncode == 0, result.stderr
    assert "No mismatches" in result.stdout
    assert "2 payments and 0 refunds of ours" in result.stdout


def test_mismatches_exit_4_with_the_report_and_its_csv(run_cli, db, paid, tmp_path):
    with db.write() as conn:
        conn.execute(update(orders).where(orders.c.number == paid[0]).values(refunded_amount=250))
    path = tmp_path / "out" / "report.csv"

    result = run_cli("--from", today(), "--to", today(), "--csv", str(path), "--json")

    assert result.returncode == 4, result.stderr
    data = json.loads(result.stdout)
    assert data["clean"] is False
    assert data["counts"]["refunded_amount_differs"] == 1 and sum(data["counts"].values()) == 1
    assert [(m["kind"], m["order_number"], m["ours"]["amount"]) for m in data["mismatches"]] == [
        ("refunded_amount_differs", paid[0], 250)
    ]
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert [(r["kind"], r["order_number"], r["ours_amount"]) for r in rows] == [
        ("refunded_amount_differs", paid[0], "2.50")
    ]

    text = run_cli("--from", today(), "--to", today())
    assert text.returncode == 4
    assert "Order whose refunded amount is not the sum of its refunds  1" in text.stdout
    assert paid[0] in text.stdout and "$2.50" in text.stdout


def test_a_bad_period_is_refused_with_exit_1(run_cli, paid):
    result = run_cli("--from", "2026-02-01", "--to", "2026-01-01")

    assert result.returncode == 1
    assert result.stderr.startswith("error: The period ends")
    assert result.stdout == ""


def test_an_unknown_option_is_bad_usage(run_cli, paid):
    assert run_cli("--since", "2026-01-01").returncode == 2
