"""One writer of test_concurrent_writers.py, run as its own process:

    python -m tests.reliability.concurrent_actor ROLE SECONDS SEED

with ORDERS_DATABASE_URL and ORDERS_DATA_DIR set. ROLE is `checkout` (the demo
customer places orders, now and then with a declining card), `single` (cancel,
fulfil or return random orders one at a time as the system), `bulk` (ops asks for
fulfil and cancel jobs of ~20 random paid orders) or `worker` (Worker.run_once in a
loop). It runs for SECONDS, counts business refusals (OrdersError) as expected, keeps
every other exception (type and message), and prints one JSON line at the end:
{"role", "ok", "refused", "declined", "refusals", "unexpected": [...]}. The exit code is 0 either way; the
test asserts on the JSON.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import sys
import time
import traceback

from sqlalchemy import select

from orders_core import checkout, customers, demo, jobs, lifecycle
from orders_core.db import open_database
from orders_core.errors import CardDeclined, OrdersError
from orders_core.job_engine import Worker
from orders_core.schema import orders
from orders_core.staff import SYSTEM, actor_for_email

# Digital SKUs only: items that ship need an address, which is not what this is about.
SKUS = ("PASS-DAY-USD", "PASS-DAY-EUR", "PASS-ANNUAL-USD", "EBOOK-BUNDLE-GBP")
DECLINING = ("tok_chargeDeclined", "tok_chargeDeclinedInsufficientFunds")


def _numbers(db, rng: random.Random, status: str | None, k: int) -> list[str]:
    query = select(orders.c.number)
    if status is not None:
        query = query.where(orders.c.status == status)
    with db.read() as conn:
        numbers = conn.execute(query).scalars().all()
    return rng.sample(numbers, min(k, len(numbers)))


def main(role: str, seconds: float, seed: int) -> dict:
    rng = random.Random(seed)
    db = open_database(os.environ["ORDERS_DATABASE_URL"], run_migrations=False)
    summary = {
        "role": role,
        "ok": 0,
        "refused": 0,
        "declined": 0,
        "refusals": {},
        "unexpected": [],
        "pid": os.getpid(),
    }
    setup = {}
    attempts = itertools.count(1)

    def step() -> None:
        if role == "checkout":
            if "customer" not in setup:
                setup["customer"] = customers.sign_in(
                    db, email=demo.DEMO_CUSTOMER_EMAIL, password=demo.DEMO_PASSWORD
                )
            token = rng.choice(DECLINING) if rng.random() < 0.15 else "tok_visa"
            items = [(rng.choice(SKUS), rng.randint(1, 3))]
            checkout.place_order(
                db,
                setup["customer"],
                items=items,
                token=token,
                checkout_key=f"cw-{seed}-{os.getpid()}-{next(attempts)}",
            )
        elif role == "single":
            action = rng.choice((lifecycle.cancel_order, lifecycle.fulfill_order, lifecycle.return_order))
            status = rng.choice(("paid", "paid", "fulfilled", "created", None))
            for number in _numbers(db, rng, status, 1):
                action(db, SYSTEM, number, reason="concurrent writers")
        elif role == "bulk":
            if "ops" not in setup:
                setup["ops"] = actor_for_email(db, "ops@ordersdesk.test")
            numbers = _numbers(db, rng, "paid", 20)
            if numbers:
                jobs.enqueue(
                    db,
                    setup["ops"],
                    rng.choice(("fulfill", "cancel")),
                    order_numbers=numbers,
                    reason="concurrent writers",
                )
            time.sleep(0.2)
        elif role == "worker":
            if "worker" not in setup:
                setup["worker"] = Worker(db, name=f"cw-{seed}")
            if setup["worker"].run_once() == 0:
                time.sleep(0.05)
        else:
            raise SystemExit(f"unknown role {role!r}")

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            step()
            summary["ok"] += 1
        except CardDeclined:
            summary["refused"] += 1
            summary["declined"] += 1
        except OrdersError as exc:
            summary["refused"] += 1
            kind = type(exc).__name__
            summary["refusals"][kind] = summary["refusals"].get(kind, 0) + 1
        except Exception as exc:  # noqa: BLE001 - reported, the test asserts on it
            summary["unexpected"].append(
                {
                    "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
                    "message": str(exc)[:500],
                    "where": "".join(traceback.format_exception(exc)[-3:])[-800:],
                }
            )
            if len(summary["unexpected"]) >= 20:
                break
    return summary


if __name__ == "__main__":
    result = main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]))
    print(json.dumps(result), flush=True)
