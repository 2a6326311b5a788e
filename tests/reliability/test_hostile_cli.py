"""Promise 3, the CLI: every command with missing, duplicated and malformed arguments
gets a clear one-line error and exit code 1 or 2, never a traceback, and the database
is unchanged (a checksum of every table before and after)."""

from __future__ import annotations

import pytest

from orders_core import cli, demo
from orders_core.db import forget_databases, open_database
from tests.reliability.evidence import table_checksums

HOSTILE = [
    # missing arguments
    ["show"],
    ["pay", "ORD-000001"],
    ["fulfill"],
    ["cancel"],
    ["return"],
    ["checkout", "--email", "customer@ordersdesk.test"],
    ["bulk", "cancel"],
    ["bulk"],
    ["job"],
    ["export"],
    ["staff", "add", "--email", "x@y.test"],
    ["staff", "set-role", "a@b.test"],
    # duplicated or conflicting arguments
    ["bulk", "cancel", "--orders", "ORD-000001", "--status", "paid"],
    ["job", "1", "--cancel", "--retry-failed"],
    [
        "checkout",
        "--email",
        "customer@ordersdesk.test",
        "--password",
        "demo-password",
        "--item",
        "PASS-DAY-USD:1",
        "--token",
        "tok_visa",
        "--address-id",
        "1",
        "--address-name",
        "A",
    ],
    # malformed values
    ["orders", "--limit", "-1"],
    ["orders", "--limit", "1", "--all"],
    ["orders", "--after", "ORD-99999999"],
    ["orders", "--after", "'; DROP TABLE orders; --"],
    ["orders", "--limit", "abc"],
    ["orders", "--status", "shipped"],
    ["orders", "--from", "2026-13-45"],
    ["orders", "--from", "2026-06-01", "--to", "2026-01-01"],
    ["orders", "--min-total", "1.5"],
    ["orders", "--min-total", "9" * 5000],
    ["orders", "--search", "x" * 10_000],
    ["show", "ORD-99999999"],
    ["show", "'; DROP TABLE orders; --"],
    ["show", "\x00"],
    ["pay", "ORD-000001", "--token", "sk_live_abcdefghijklmnop"],
    ["pay", "ORD-000001", "--token", "4242 4242 4242 4242"],
    ["fulfill", "ORD-000001", "--actor", "nobody@nowhere.test"],
    ["cancel", "ORD-000001", "--reason", "r" * 5000],
    ["cancel", "ORD-000001", "--actor", "analyst@ordersdesk.test"],
    [
        "checkout",
        "--email",
        "customer@ordersdesk.test",
        "--password",
        "wrong-password",
        "--item",
        "PASS-DAY-USD:1",
        "--token",
        "tok_visa",
    ],
    [
        "checkout",
        "--email",
        "customer@ordersdesk.test",
        "--password",
        "demo-password",
        "--item",
        "PASS-DAY-USD",
        "--token",
        "tok_visa",
    ],
    [
        "checkout",
        "--email",
        "customer@ordersdesk.test",
        "--password",
        "demo-password",
        "--item",
        "PASS-DAY-USD:abc",
        "--token",
        "tok_visa",
    ],
    [
        "checkout",
        "--email",
        "customer@ordersdesk.test",
        "--password",
        "demo-password",
        "--item",
        "PASS-DAY-USD:0",
        "--token",
        "tok_visa",
    ],
    [
        "checkout",
        "--email",
        "customer@ordersdesk.test",
        "--password",
        "demo-password",
        "--item",
        "NO-SUCH-SKU:1",
        "--token",
        "tok_visa",
    ],
    ["bulk", "fulfill", "--orders", ""],
    ["bulk", "fulfill", "--orders", "ORD-999999"],
    ["bulk", "explode", "--status", "paid"],
    ["bulk", "cancel", "--status", "paid", "--min-total", "x"],
    ["job", "abc"],
    ["job", "-5"],
    ["job", "999999"],
    ["jobs", "--limit", "0"],
    ["export", "--output"],
    ["seed", "--orders", "-5"],
    ["seed", "--orders", "ten"],
    ["staff", "set-role", "admin@ordersdesk.test", "emperor"],
    ["staff", "add", "--email", "not-an-email", "--name", "X", "--role", "ops", "--password", "long-enough"],
    ["nonsense"],
    [],
]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    path = tmp_path_factory.mktemp("hostile-cli") / "orders.db"
    url = f"sqlite:///{path}"
    demo.seed(open_database(url), orders=40, random_seed=5)
    yield url
    forget_databases()


@pytest.mark.parametrize("argv", HOSTILE, ids=[" ".join(a)[:60] or "(nothing)" for a in HOSTILE])
def test_hostile_cli_arguments_explain_themselves_and_change_nothing(seeded, argv, monkeypatch, capsys):
    monkeypatch.setenv("ORDERS_DATABASE_URL", seeded)
    db = open_database(seeded)
    before = table_checksums(db)
    code = cli.main(argv)
    captured = capsys.readouterr()
    assert code in (1, 2), f"exit {code}: {captured.err[-300:]}"
    assert "Traceback" not in captured.err + captured.out
    assert captured.err.strip(), "a refusal must say why"
    assert "sk_live_abcdefghijklmnop" not in captured.err + captured.out
    assert table_checksums(db) == before


# Valid, if hostile-looking, searches: answered as plain text (no SQL, no wildcards).
HARMLESS = [
    ["orders", "--search", "'; DROP TABLE orders; --"],
    ["orders", "--sku", "%_%"],
    ["orders", "--search", "%"],
    ["orders", "--json", "--search", "\\"],
]


@pytest.mark.parametrize("argv", HARMLESS, ids=[" ".join(a) for a in HARMLESS])
def test_sql_and_wildcard_text_is_searched_literally_and_changes_nothing(seeded, argv, monkeypatch, capsys):
    monkeypatch.setenv("ORDERS_DATABASE_URL", seeded)
    db = open_database(seeded)
    before = table_checksums(db)
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    assert "ORD-" not in captured.out  # no order's email or name contains these characters
    assert table_checksums(db) == before
