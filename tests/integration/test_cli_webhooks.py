"""`python -m orders_core gateway ...` and `webhooks ...`, run for real as subprocesses
on a seeded SQLite file: the simulated gateway's offline demos deliver their events
into the inbox and apply them; the inbox is listed; a disputed order needs
--confirm-disputed to be fulfilled."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.cli_process import run
from tests.support.cli_process import run_json as as_json

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("cli-webhooks")
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("ORDERS_", "STRIPE_")) and k != "PYTHONPATH"
    }
    environment.update(
        ORDERS_DATA_DIR=str(data_dir),
        ORDERS_DATABASE_URL=f"sqlite:///{data_dir / 'cli.db'}",
        ORDERS_PAYMENT_GATEWAY="simulated",
        PYTHONPATH=str(REPO_ROOT),
        PYTHONIOENCODING="utf-8",
    )
    as_json(environment, "seed", "--orders", "30")
    return environment


def paid(env) -> list[str]:
    return [o["number"] for o in as_json(env, "orders", "--status", "paid")]


def test_a_refund_outside_orders_desk_from_the_cli_is_recorded_on_the_order(env):
    number = paid(env)[0]
    delivered = as_json(env, "gateway", "refund-outside", number, "--amount", "100")
    assert (delivered["order"], delivered["type"], delivered["outcome"]) == (
        number,
        "refund.created",
        "applied",
    )
    order = as_json(env, "show", number)
    assert order["refunded_amount"] == 100
    assert [(r["action"], r["gateway_refund_id"]) for r in order["refunds"]] == [
        ("external", delivered["object"])
    ]
    [listed] = [e for e in as_json(env, "webhooks", "list") if e["event_id"] == delivered["event"]]
    assert (listed["outcome"], listed["order_number"], listed["source"]) == ("applied", number, "simulated")


def test_a_dispute_from_the_cli_blocks_fulfil_until_confirmed_and_closes(env):
    number = paid(env)[1]
    opened = as_json(env, "gateway", "dispute", number, "--reason", "fraudulent")
    assert opened["outcome"] == "applied"
    refused = run(env, "fulfill", number)
    assert refused.returncode == 1 and opened["object"] in refused.stderr and "disputed" in refused.stderr
    assert as_json(env, "fulfill", number, "--confirm-disputed")["status"] == "fulfilled"
    closed = as_json(env, "gateway", "close-dispute", number, "--status", "lost")
    assert (closed["object"], closed["outcome"]) == (opened["object"], "applied")
    again = run(env, "gateway", "close-dispute", number)
    assert again.returncode == 1 and "no open dispute" in again.stderr


def test_webhooks_list_unmatched_and_process(env):
    assert as_json(env, "webhooks", "list", "--unmatched") == []
    assert as_json(env, "webhooks", "process") == {"processed": 0}
    bad = run(env, "gateway", "dispute", "ORD-999999")
    assert bad.returncode == 1 and "No order" in bad.stderr
