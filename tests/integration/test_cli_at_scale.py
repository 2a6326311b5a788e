"""`python -m orders_core orders` at any size, run for real as a subprocess on SQLite
and PostgreSQL: --limit N for any N, --all, --jsonl, --after NUMBER, --count; and the
memory of a streamed listing stays flat as the number of orders grows
(orders_core/order_listing.py reads in keyset chunks)."""

from __future__ import annotations

import contextlib
import io
import json
import tracemalloc

import pytest

from orders_core import cli, demo, order_listing
from orders_core import db as orders_db
from tests.integration.test_cli import _environment, _refused, _run

ORDERS = 4500  # more than two of the listing's chunks (CHUNK_ROWS = 2000)


@pytest.fixture
def env(database_url, tmp_path):
    demo.seed(orders_db.open_database(database_url), orders=ORDERS, random_seed=5)
    orders_db.forget_databases()
    return _environment(tmp_path, database_url)


def lines(env, *args: str) -> list[dict]:
    result = _run(env, "orders", *args, "--jsonl")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def numbers(rows) -> list[str]:
    return [r["number"] for r in rows]


def newest_first(rows) -> bool:
    keys = [(r["created_at"], r["id"]) for r in rows]
    return keys == sorted(keys, reverse=True)


def test_the_listing_reaches_every_order_in_any_amount_and_pages_from_a_known_one(env):
    everything = lines(env, "--all")
    assert len(everything) == ORDERS and len(set(numbers(everything))) == ORDERS
    assert newest_first(everything)
    count = _run(env, "orders", "--count")
    assert (count.returncode, count.stdout) == (0, f"{ORDERS}\n")
    # Beyond the old cap of 500, and across chunk boundaries.
    assert lines(env, "--limit", "2501") == everything[:2501]
    assert lines(env, "--limit", str(10 * ORDERS)) == everything
    # --after: the next page starts right after the order given.
    first = lines(env, "--limit", "1999")
    second = lines(env, "--limit", "1999", "--after", first[-1]["number"])
    assert first + second == everything[:3998]
    assert lines(env, "--all", "--after", everything[-2]["number"]) == everything[-1:]
    assert lines(env, "--all", "--after", everything[-1]["number"]) == []
    # --json is the same rows as one list.
    listed = _run(env, "orders", "--limit", "2100", "--json")
    assert json.loads(listed.stdout) == everything[:2100]


def test_filters_narrow_every_form_of_the_listing_alike(env):
    paid = lines(env, "--status", "paid", "--all")
    assert paid and {r["status"] for r in paid} == {"paid"} and newest_first(paid)
    count = _run(env, "orders", "--status", "paid", "--count")
    assert int(count.stdout) == len(paid)
    everything = lines(env, "--all")
    assert paid == [r for r in everything if r["status"] == "paid"]
    # --after an order outside the filter still starts at its place in the list.
    unpaid = next(r for r in everything[100:] if r["status"] != "paid")
    place = everything.index(unpaid)
    assert lines(env, "--status", "paid", "--all", "--after", unpaid["number"]) == [
        r for r in everything[place + 1 :] if r["status"] == "paid"
    ]


def test_after_an_unknown_or_malformed_order_number_is_refused(env):
    assert "No order ORD-9999999" in _refused(_run(env, "orders", "--after", "ORD-9999999"))
    assert "is not an order number" in _refused(_run(env, "orders", "--after", "nope"))


# -- memory -----------------------------------------------------------------------------------
class _Sink(io.TextIOBase):
    """stdout that keeps nothing."""

    def write(self, text: str) -> int:
        return len(text)


def peak_bytes(argv: list[str]) -> int:
    """tracemalloc's peak while the CLI runs `argv` in this process, output discarded."""
    tracemalloc.start()
    try:
        with contextlib.redirect_stdout(_Sink()):
            assert cli.main(argv) == 0
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("database_url", [pytest.param("sqlite", id="sqlite")], indirect=True)
def test_streaming_every_order_takes_the_memory_of_one_chunk_whatever_the_count(
    env, database_url, monkeypatch
):
    monkeypatch.setenv("ORDERS_DATABASE_URL", database_url)
    monkeypatch.setattr(order_listing, "CHUNK_ROWS", 250)
    peak_bytes(["orders", "--limit", "10", "--jsonl"])  # imports and the engine, once
    small = peak_bytes(["orders", "--limit", "450", "--jsonl"])
    large = peak_bytes(["orders", "--all", "--jsonl"])  # 10× the rows
    assert large < small * 1.5, (small, large)
    # The measurement sees growth where there is some: the table keeps every row.
    table_small = peak_bytes(["orders", "--limit", "450"])
    table_large = peak_bytes(["orders", "--all"])
    assert table_large > table_small * 4, (table_small, table_large)
