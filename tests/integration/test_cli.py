"""`python -m orders_core`, run for real as a subprocess: exit codes, messages on
stderr, JSON shapes on stdout, and whole order journeys through the commands.

One SQLite database (seeded with 50 demo orders) is shared by the module; tests that
change orders make their own through `checkout`, so they do not depend on each other.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orders_core import demo
from tests.support.cli_process import run as _run
from tests.support.cli_process import run_json as _json

REPO_ROOT = Path(__file__).resolve().parents[2]
ORDER_DETAIL_KEYS = {
    "number",
    "status",
    "customer",
    "items",
    "total_amount",
    "currency",
    "refunded_amount",
    "shipping_address",
    "created_at",
    "paid_at",
    "fulfilled_at",
    "canceled_at",
    "returned_at",
    "payment",
    "payment_attempts",
    "refunds",
    "events",
}
ADDRESS = [
    "--address-name",
    "Demo Customer",
    "--address-line1",
    "1 Market Street",
    "--address-city",
    "San Francisco",
    "--address-region",
    "CA",
    "--address-postal-code",
    "94105",
    "--address-country",
    "US",
]


def _environment(data_dir: Path, database_url: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("ORDERS_", "STRIPE_")) and k != "PYTHONPATH"
    }
    env.update(
        ORDERS_DATA_DIR=str(data_dir),
        ORDERS_DATABASE_URL=database_url,
        ORDERS_PAYMENT_GATEWAY="simulated",
        PYTHONPATH=str(REPO_ROOT),
        PYTHONIOENCODING="utf-8",
    )
    return env


def _refused(result: subprocess.CompletedProcess, *, code: int = 1) -> str:
    """The stderr of a clean refusal: the expected exit code, one 'error:' line, no traceback."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    if code == 1:
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
        assert result.stdout == ""
    return result.stderr


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    data_dir = tmp_path_factory.mktemp("cli")
    env = _environment(data_dir, f"sqlite:///{data_dir / 'cli.db'}")
    report = _json(env, "seed", "--orders", "50")
    assert report["orders"] == 50
    return env


def _checkout(env, *extra: str, token: str = "tok_visa", items=("BOX-MONTHLY-USD:2",)):
    args = [
        "checkout",
        "--email",
        demo.DEMO_CUSTOMER_EMAIL,
        "--password",
        demo.DEMO_PASSWORD,
        "--token",
        token,
        *ADDRESS,
        *extra,
    ]
    for item in items:
        args += ["--item", item]
    return _run(env, *args, "--json")


def _paid_order(env) -> dict:
    result = _checkout(env)
    assert result.returncode == 0, result.stderr
    order = json.loads(result.stdout)
    assert order["status"] == "paid"
    return order


# -- exit codes ------------------------------------------------------------------------------
def test_migrate_reports_the_schema_is_up_to_date(env):
    result = _run(env, "migrate")
    assert (result.returncode, result.stdout) == (0, "schema up to date\n")


@pytest.mark.parametrize(
    "args",
    [
        ["frobnicate"],
        ["orders", "--limit", "abc"],
        ["seed", "--orders", "-5"],
        ["orders", "--all", "--limit", "5"],
        ["orders", "--json", "--jsonl"],
    ],
    ids=["unknown-subcommand", "limit-not-a-number", "negative-seed-orders", "all-and-limit", "two-shapes"],
)
def test_bad_usage_exits_2_with_argparse_usage_and_no_traceback(env, args):
    stderr = _refused(_run(env, *args), code=2)
    assert "usage:" in stderr


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["orders", "--limit", "0"],
        ["seed", "--orders", "5000001"],
        ["seed", "--orders", "1e3"],
        ["staff"],
        ["staff", "set-role", "someone@ordersdesk.test"],
        [
            "checkout",
            "--email",
            "a@b.test",
            "--password",
            "x" * 8,
            "--token",
            "tok_visa",
            "--item",
            "TOTE-USD",
        ],
        [
            "checkout",
            "--email",
            "a@b.test",
            "--password",
            "x" * 8,
            "--token",
            "tok_visa",
            "--item",
            "TOTE-USD:1",
            "--address-id",
            "1",
            "--address-city",
            "Paris",
        ],
    ],
    ids=[
        "no-command",
        "limit-zero",
        "too-many-seed-orders",
        "seed-orders-not-whole",
        "staff-without-subcommand",
        "set-role-without-role",
        "item-without-quantity",
        "address-id-and-address-fields",
    ],
)
def test_more_bad_usage_exits_2_before_touching_the_database(args, capsys, monkeypatch):
    # In-process (the same main() as `python -m orders_core`): each of these stops in
    # argument parsing, and the database URL points nowhere to prove it.
    from orders_core import cli

    monkeypatch.setenv("ORDERS_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert cli.main(args) == 2
    captured = capsys.readouterr()
    assert "usage:" in captured.err and "Traceback" not in captured.err and captured.out == ""


def test_a_total_without_a_currency_is_refused_naming_the_field(env):
    stderr = _refused(_run(env, "orders", "--min-total", "1.5"))
    assert "Min total needs a currency" in stderr


def test_a_total_with_more_decimals_than_its_currency_is_refused(env):
    stderr = _refused(_run(env, "orders", "--currency", "jpy", "--min-total", "1.5"))
    assert "Min total: '1.5' has too many decimals; JPY amounts take whole units" in stderr


def test_a_quantity_that_is_not_a_whole_number_is_refused_cleanly(env):
    stderr = _refused(_checkout(env, items=("TOTE-USD:two",)))
    assert "Quantity of TOTE-USD must be a whole number" in stderr


def test_showing_a_missing_order_exits_1_saying_there_is_no_such_order(env):
    assert "No order 'ORD-999999'" in _refused(_run(env, "show", "ORD-999999"))


def test_a_wrong_customer_password_exits_1_without_revealing_it(env):
    result = _run(
        env,
        "checkout",
        "--email",
        demo.DEMO_CUSTOMER_EMAIL,
        "--password",
        "not-the-password",
        "--token",
        "tok_visa",
        "--item",
        "PASS-DAY-USD:1",
    )
    stderr = _refused(result)
    assert "Unknown email or wrong password" in stderr and "not-the-password" not in stderr


def test_cancelling_a_canceled_order_exits_1_with_a_message_naming_its_status(env):
    number = _paid_order(env)["number"]
    assert _json(env, "cancel", number, "--reason", "Customer request")["status"] == "canceled"
    stderr = _refused(_run(env, "cancel", number))
    assert f"Order {number} is Canceled; Cancel applies to Created or Paid orders" in stderr


def test_an_analyst_actor_cannot_cancel_and_the_order_stays_paid(env):
    created = _json(
        env,
        "staff",
        "add",
        "--email",
        "cli.analyst@ordersdesk.test",
        "--name",
        "Cli Analyst",
        "--role",
        "analyst",
        "--password",
        "analyst-pass-1",
    )
    assert created == {
        "id": created["id"],
        "email": "cli.analyst@ordersdesk.test",
        "name": "Cli Analyst",
        "role": "analyst",
        "active": True,
    }
    number = _paid_order(env)["number"]
    stderr = _refused(_run(env, "cancel", number, "--actor", "cli.analyst@ordersdesk.test"))
    assert "cli.analyst@ordersdesk.test is not allowed to cancel orders" in stderr
    assert _json(env, "show", number)["status"] == "paid"


def test_an_unknown_actor_is_refused_with_exit_1(env):
    stderr = _refused(_run(env, "fulfill", "ORD-000001", "--actor", "nobody@ordersdesk.test"))
    assert "No staff account" in stderr


def test_an_unexpected_failure_exits_3_without_traceback_or_the_database_password(tmp_path):
    env = _environment(tmp_path, "postgresql+psycopg://orders:s3cret-pw@127.0.0.1:1/orders")
    result = _run(env, "catalog")
    assert result.returncode == 3, result.stderr
    assert result.stderr.startswith("error: unexpected failure: OperationalError: ")
    assert "Traceback" not in result.stderr and "s3cret-pw" not in result.stderr


# -- JSON shapes -----------------------------------------------------------------------------
def test_catalog_json_lists_skus_with_exactly_the_documented_keys(env):
    skus = _json(env, "catalog")
    assert skus and all(
        set(s) == {"code", "name", "product", "shippable", "unit_amount", "currency", "active"} for s in skus
    )
    assert any(s["code"] == "BOX-MONTHLY-USD" and s["unit_amount"] == 2900 for s in skus)


def test_orders_json_is_a_list_of_order_rows_newest_first(env):
    rows = _json(env, "orders", "--limit", "20")
    assert len(rows) == 20
    required = {"number", "status", "customer_email", "total_amount", "currency", "created_at"}
    assert all(required <= set(r) for r in rows)
    assert [r["created_at"] for r in rows] == sorted((r["created_at"] for r in rows), reverse=True)


def test_show_json_is_the_order_detail(env):
    number = _json(env, "orders", "--limit", "1")[0]["number"]
    order = _json(env, "show", number)
    assert set(order) == ORDER_DETAIL_KEYS and order["number"] == number


def test_orders_prints_a_readable_table_without_json(env):
    result = _run(env, "orders", "--limit", "3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:2] == ["NUMBER", "STATUS"] and len(lines) == 5
    assert lines[-1].startswith("3 of ")


# -- journeys --------------------------------------------------------------------------------
def test_checkout_fulfill_and_return_refunds_the_whole_total(env):
    order = _paid_order(env)
    number = order["number"]
    assert order["total_amount"] == 5800 and order["shipping_address"]["city"] == "San Francisco"
    assert _json(env, "fulfill", number)["status"] == "fulfilled"
    assert _json(env, "return", number, "--reason", "Damaged in transit")["status"] == "returned"
    shown = _json(env, "show", number)
    assert shown["status"] == "returned"
    assert shown["refunded_amount"] == shown["total_amount"] == 5800
    assert [r["status"] for r in shown["refunds"]] == ["succeeded"]
    assert [e["action"] for e in shown["events"]] == ["create", "pay", "fulfill", "return"]


def test_a_declined_checkout_exits_1_and_leaves_a_created_order_with_a_payment_failed_event(env):
    stderr = _refused(_checkout(env, token="tok_chargeDeclinedInsufficientFunds"))
    assert "insufficient funds" in stderr
    number = stderr.split("Payment for order ")[1].split()[0]
    order = _json(env, "show", number)
    assert order["status"] == "created"
    assert "payment_failed" in [e["action"] for e in order["events"]]
    # ...and an operator can take the payment again with a good card.
    assert _json(env, "pay", number, "--token", "tok_visa")["status"] == "paid"


def test_a_checkout_repeated_after_a_decline_charges_the_new_card_for_the_same_order(env):
    stderr = _refused(_checkout(env, "--checkout-key", "K1", token="tok_chargeDeclined"))
    number = stderr.split("Payment for order ")[1].split()[0]

    result = _checkout(env, "--checkout-key", "K1", token="tok_visa")

    assert result.returncode == 0, result.stderr
    order = json.loads(result.stdout)
    assert (order["number"], order["status"]) == (number, "paid")
    assert [p["status"] for p in order["payment_attempts"]] == ["failed", "succeeded"]


def test_two_concurrent_checkouts_with_one_key_both_succeed_with_one_paid_order(env):
    args = [
        "checkout",
        "--email",
        demo.DEMO_CUSTOMER_EMAIL,
        "--password",
        demo.DEMO_PASSWORD,
        "--token",
        "tok_visa",
        *ADDRESS,
        "--item",
        "BOX-MONTHLY-USD:1",
        "--checkout-key",
        "K-concurrent",
        "--json",
    ]
    both = [
        subprocess.Popen(
            [sys.executable, "-m", "orders_core", *args],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in both]

    assert [p.returncode for p in both] == [0, 0], outputs
    numbers = {json.loads(stdout)["number"] for stdout, _ in outputs}
    assert len(numbers) == 1
    shown = _json(env, "show", numbers.pop())
    assert shown["status"] == "paid"
    assert [p["status"] for p in shown["payment_attempts"]] == ["succeeded"]


def test_orders_filtered_by_status_paid_lists_only_paid_orders(env):
    rows = _json(env, "orders", "--status", "paid", "--limit", "500")
    assert rows and {r["status"] for r in rows} == {"paid"}


def test_search_finds_an_order_by_its_number_and_orders_by_customer_email(env):
    newest = _json(env, "orders", "--limit", "1")[0]
    by_number = _json(env, "orders", "--search", newest["number"])
    assert [r["number"] for r in by_number] == [newest["number"]]
    email = newest["customer_email"]
    by_email = _json(env, "orders", "--search", email.upper(), "--limit", "500")
    assert newest["number"] in [r["number"] for r in by_email]
    assert {r["customer_email"] for r in by_email} == {email}


def test_staff_roles_can_be_changed_and_accounts_deactivated(env):
    email = "cli.support@ordersdesk.test"
    _json(
        env,
        "staff",
        "add",
        "--email",
        email,
        "--name",
        "Cli Support",
        "--role",
        "support",
        "--password",
        "support-pass-1",
    )
    assert _json(env, "staff", "set-role", email, "ops")["role"] == "ops"
    assert _json(env, "staff", "deactivate", email)["active"] is False
    stderr = _refused(_run(env, "fulfill", "ORD-000001", "--actor", email))
    assert "deactivated" in stderr
    listed = {a["email"]: a for a in _json(env, "staff", "list")}
    assert listed[email]["role"] == "ops" and listed[email]["active"] is False
    assert _json(env, "staff", "activate", email)["active"] is True


def test_an_operator_ends_a_staff_members_sessions_and_reads_the_audit_log(env):
    from orders_core import authentication
    from orders_core import db as orders_db

    email = "cli.ops@ordersdesk.test"
    _json(
        env,
        "staff",
        "add",
        "--email",
        email,
        "--name",
        "Cli Ops",
        "--role",
        "ops",
        "--password",
        "ops-pass-123",
    )
    db = orders_db.open_database(env["ORDERS_DATABASE_URL"], run_migrations=False)
    try:
        token = authentication.sign_in_with_password(
            db, email, "ops-pass-123", client_address="192.0.2.5"
        ).token
        [listed] = _json(env, "staff", "sessions", email)
        assert listed["client_address"] == "192.0.2.5" and listed["method"] == "password"
        assert _json(env, "staff", "sign-out", email)["sessions_ended"] == 1
        assert isinstance(authentication.current_session(db, token), authentication.SessionEnded)
        assert _json(env, "staff", "sessions", email) == []
        reset = _json(env, "staff", "reset-password", email, "--temporary-password", "temp-pass-99")
        assert reset["email"] == email
        assert authentication.sign_in_with_password(db, email, "temp-pass-99").account.password_must_change
        assert "8 characters" in _refused(
            _run(env, "staff", "reset-password", email, "--temporary-password", "short")
        )
        events = [(e["event"], e["success"]) for e in _json(env, "staff", "audit", "--email", email)]
        assert ("password_reset", True) in events and ("sessions_revoked", True) in events
        assert ("sign_in", True) in events and ("account_created", True) in events
    finally:
        orders_db.forget_databases()


def test_the_kept_order_counts_are_checked_and_rebuilt_from_the_cli(env):
    from sqlalchemy import update

    from orders_core import db as orders_db
    from orders_core.schema import order_day_counts, order_skus

    assert _json(env, "counts") == []
    db = orders_db.open_database(env["ORDERS_DATABASE_URL"], run_migrations=False)
    try:
        with db.write() as conn:
            conn.execute(update(order_day_counts).values(orders=order_day_counts.c.orders + 1))
            conn.execute(update(order_skus).values(status="created"))  # each order's SKU rows too
        differ = _run(env, "counts")  # the differing rows on stdout, why on stderr, exit 1
        assert differ.returncode == 1 and "differ from the orders" in differ.stderr
        assert "KEPT" in differ.stdout and "COUNTED" in differ.stdout
        assert "KEPT (order_skus)" in differ.stdout
        rebuilt = _json(env, "counts", "--rebuild")
        assert rebuilt["rebuilt"] > 0 and rebuilt["rebuilt_order_skus"] > 0
        assert _json(env, "counts", "--check") == []
    finally:
        orders_db.forget_databases()


# -- the order detail's printed shape, pinned ----------------------------------------------------
GOLDEN = Path(__file__).parent / "golden"
_VOLATILE = (
    (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "<time>"),
    (r"ORD-\d+", "ORD-<n>"),
    (r"\b(pi|re|ch)_[A-Za-z0-9_]+", r"\1_<id>"),
    (r'"(id|job_id)": \d+', r'"\1": <id>'),
)


def _masked(text: str) -> str:
    """The output with what differs run to run (times, numbers, ids) replaced by markers."""
    import re

    for pattern, marker in _VOLATILE:
        text = re.sub(pattern, marker, text)
    return text


def _journeyed_order(env, key: str) -> str:
    """An order declined once, paid with another card, fulfilled and returned."""
    declined = _checkout(env, "--checkout-key", key, token="tok_chargeDeclined")
    assert declined.returncode == 1, declined.stderr
    number = _json(env, "orders", "--limit", "1")[0]["number"]
    assert _checkout(env, "--checkout-key", key).returncode == 0
    assert _json(env, "fulfill", number)["status"] == "fulfilled"
    assert _json(env, "return", number, "--reason", "Damaged in transit")["status"] == "returned"
    return number


@pytest.mark.parametrize(("extra", "golden"), [(("--json",), "show_order.json.txt"), ((), "show_order.txt")])
def test_show_prints_the_order_detail_exactly_as_pinned(env, extra, golden):
    number = _journeyed_order(env, f"pin-{golden}")
    result = _run(env, "show", number, *extra)
    assert result.returncode == 0, result.stderr
    assert _masked(result.stdout) == (GOLDEN / golden).read_text(encoding="utf-8")
