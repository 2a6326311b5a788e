"""Promise 4: roles hold when the page is bypassed.

Every role, a customer (on their own order and on someone else's) and the system
operator, against every state-changing service, called directly. The expected
answers are written out below from the product's role definitions (the issue and
the README's accounts table), not read from orders_core.staff.ROLE_PERMISSIONS: a
table derived from the code under test would agree with any mistake in it.

A denied call raises PermissionDenied and leaves every table's contents exactly as
they were; an allowed call goes through and changes something.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import insert, select, update

from orders_core import jobs, lifecycle, reconciliation_jobs, staff
from orders_core.checkout import pay_order, place_order
from orders_core.clock import utcnow
from orders_core.errors import CardDeclined, PermissionDenied
from orders_core.job_engine import run_job_here
from orders_core.passwords import LOCKED
from orders_core.queries import order_detail
from orders_core.reconciliation import Period
from orders_core.schema import jobs as jobs_table
from orders_core.schema import orders
from orders_core.schema import staff as staff_table
from orders_core.staff import SYSTEM, Actor, Role
from tests.reliability.evidence import changed_tables, table_checksums
from tests.reliability.shop import Shop, build_shop

ACTORS = [
    "analyst",
    "support",
    "ops",
    "admin",
    "customer",
    "other customer",
    "system",
    "deactivated admin",
    "demoted admin",
]

# analyst: view and export, reconcile with the gateway. support: + cancel, return, staff
# notes. ops: + fulfil, take payments, cancel or retry jobs. admin: everything, and staff
# accounts. A customer may only pay for their own order. The system operator (the CLI
# on the server) may do all.
# The last two hold an Actor that still says Admin (a tab opened before the change):
# one was deactivated since, nothing is allowed; one was demoted to analyst since,
# only what an analyst may do is allowed. The database decides, not the Actor.
Y, n = True, False
EXPECTED = {  #              analyst support ops admin customer other-customer system deact. demoted
    "fulfill order": (n, n, Y, Y, n, n, Y, n, n),
    "cancel order": (n, Y, Y, Y, n, n, Y, n, n),
    "return order": (n, Y, Y, Y, n, n, Y, n, n),
    "add staff note": (n, Y, Y, Y, n, n, Y, n, n),
    "pay order": (n, n, Y, Y, Y, n, Y, n, n),
    "create staff account": (n, n, n, Y, n, n, Y, n, n),
    "change staff role": (n, n, n, Y, n, n, Y, n, n),
    "deactivate staff": (n, n, n, Y, n, n, Y, n, n),
    "bulk export": (Y, Y, Y, Y, n, n, Y, n, Y),
    "bulk fulfill": (n, n, Y, Y, n, n, Y, n, n),
    "bulk cancel": (n, Y, Y, Y, n, n, Y, n, n),
    "bulk return": (n, Y, Y, Y, n, n, Y, n, n),
    "cancel job": (n, n, Y, Y, n, n, Y, n, n),
    "retry failed orders": (n, n, Y, Y, n, n, Y, n, n),
    "start reconciliation": (Y, Y, Y, Y, n, n, Y, n, Y),
}
CELLS = [
    (service, actor, allowed) for service, row in EXPECTED.items() for actor, allowed in zip(ACTORS, row)
]


def actor_named(shop: Shop, name: str) -> Actor:
    if name == "customer":
        return shop.customer_actor
    if name == "other customer":
        return shop.other_actor
    if name == "system":
        return SYSTEM
    if name in ("deactivated admin", "demoted admin"):
        email = f"{name.split()[0]}-{uuid.uuid4().hex[:8]}@ordersdesk.test"
        with shop.db.write() as conn:  # the account as it is now; the Actor still says Admin
            conn.execute(
                insert(staff_table).values(
                    email=email,
                    email_key=email,
                    name=name.title(),
                    password_hash=LOCKED,
                    role="admin" if name == "deactivated admin" else "analyst",
                    active=name != "deactivated admin",
                    created_at=utcnow(),
                )
            )
        return Actor(email, Role.ADMIN)
    return Actor(f"{name}@ordersdesk.test", Role(name))


def paid_order(shop: Shop) -> str:
    return place_order(shop.db, shop.customer, items=[("PASS-USD", 1)], token="tok_visa").number


def fulfilled_order(shop: Shop) -> str:
    number = paid_order(shop)
    lifecycle.fulfill_order(shop.db, SYSTEM, number)
    return number


def declined_order(shop: Shop) -> str:
    with pytest.raises(CardDeclined):
        place_order(shop.db, shop.customer, items=[("PASS-USD", 1)], token="tok_chargeDeclined")
    with shop.db.read() as conn:
        return conn.execute(select(orders.c.number).order_by(orders.c.id.desc()).limit(1)).scalar_one()


def staff_member(shop: Shop) -> str:
    """A staff account to act on (inserted directly: argon2 hashing is slow and beside
    the point here)."""
    email = f"target-{uuid.uuid4().hex[:8]}@ordersdesk.test"
    with shop.db.write() as conn:
        conn.execute(
            insert(staff_table).values(
                email=email,
                email_key=email,
                name="Target",
                role="support",
                active=True,
                password_hash=LOCKED,
                created_at=utcnow(),
            )
        )
    return email


def queued_job(shop: Shop) -> int:
    return jobs.enqueue(shop.db, SYSTEM, "fulfill", order_numbers=[paid_order(shop)]).id


def job_with_a_failure(shop: Shop) -> int:
    # A bulk fulfil of an order that is not paid fails for that order; paid since, a
    # retry can fulfil it.
    number = declined_order(shop)
    job = jobs.enqueue(shop.db, SYSTEM, "fulfill", order_numbers=[number])
    finished = run_job_here(shop.db, job.id)
    assert finished.failed == 1, finished
    pay_order(shop.db, SYSTEM, number, token="tok_visa")
    return job.id


# service -> (prepare the target as the system operator, the call as `actor`)
SERVICES = {
    "fulfill order": (paid_order, lambda s, a, t: lifecycle.fulfill_order(s.db, a, t)),
    "cancel order": (paid_order, lambda s, a, t: lifecycle.cancel_order(s.db, a, t)),
    "return order": (fulfilled_order, lambda s, a, t: lifecycle.return_order(s.db, a, t)),
    "add staff note": (paid_order, lambda s, a, t: lifecycle.add_note(s.db, a, t, "Called them.")),
    "pay order": (declined_order, lambda s, a, t: pay_order(s.db, a, t, token="tok_visa")),
    "create staff account": (
        lambda s: f"new-{uuid.uuid4().hex[:8]}@ordersdesk.test",
        lambda s, a, t: staff.create_staff(
            s.db, a, email=t, name="New Hire", role="analyst", password="correct horse battery"
        ),
    ),
    "change staff role": (staff_member, lambda s, a, t: staff.set_staff_role(s.db, a, t, "ops")),
    "deactivate staff": (staff_member, lambda s, a, t: staff.set_staff_active(s.db, a, t, False)),
    "bulk export": (paid_order, lambda s, a, t: jobs.enqueue(s.db, a, "export", order_numbers=[t])),
    "bulk fulfill": (paid_order, lambda s, a, t: jobs.enqueue(s.db, a, "fulfill", order_numbers=[t])),
    "bulk cancel": (paid_order, lambda s, a, t: jobs.enqueue(s.db, a, "cancel", order_numbers=[t])),
    "bulk return": (fulfilled_order, lambda s, a, t: jobs.enqueue(s.db, a, "return", order_numbers=[t])),
    "cancel job": (queued_job, lambda s, a, t: jobs.cancel_job(s.db, a, t)),
    "retry failed orders": (job_with_a_failure, lambda s, a, t: jobs.retry_failed(s.db, a, t)),
    "start reconciliation": (
        lambda s: Period.parse(),
        lambda s, a, t: reconciliation_jobs.start_reconciliation(s.db, a, t),
    ),
}


def check_cell(shop: Shop, service: str, actor_name: str, allowed: bool) -> None:
    prepare, call = SERVICES[service]
    target = prepare(shop)
    actor = actor_named(shop, actor_name)
    before = table_checksums(shop.db)
    if allowed:
        call(shop, actor, target)
        assert table_checksums(shop.db) != before, f"{actor_name} may {service}, yet nothing changed"
    else:
        with pytest.raises(PermissionDenied) as denied:
            call(shop, actor, target)
        assert str(denied.value).strip()
        after = table_checksums(shop.db)
        assert after == before, f"{actor_name}'s refused {service} changed {changed_tables(before, after)}"


def test_the_table_covers_every_role_and_every_state_changing_service():
    assert set(ACTORS) >= {r.value for r in Role} | {"customer", "system"}
    assert set(EXPECTED) == set(SERVICES)
    assert all(len(row) == len(ACTORS) for row in EXPECTED.values())


@pytest.mark.parametrize(
    "service,actor_name,allowed", CELLS, ids=[f"{a} {'may' if ok else 'may not'} {s}" for s, a, ok in CELLS]
)
def test_each_role_may_do_exactly_what_its_definition_says(sqlite_shop, service, actor_name, allowed):
    check_cell(sqlite_shop, service, actor_name, allowed)


@pytest.mark.postgres
def test_the_whole_table_holds_on_postgresql_too(postgres_db):
    """Every refusal, and the least role allowed each service, on PostgreSQL (in one
    database; a refused call changes nothing, so one target serves every refusal)."""
    shop = build_shop(postgres_db)
    for service, row in EXPECTED.items():
        prepare, call = SERVICES[service]
        target = prepare(shop)
        actors = [actor_named(shop, name) for name in ACTORS]  # some are accounts to insert
        before = table_checksums(shop.db)
        for actor, allowed in zip(actors, row):
            if not allowed:
                with pytest.raises(PermissionDenied):
                    call(shop, actor, target)
        assert table_checksums(shop.db) == before, f"a refused {service} wrote"
        least = next(a for a, allowed in zip(ACTORS, row) if allowed)
        call(shop, actor_named(shop, least), target)
        assert table_checksums(shop.db) != before


def test_a_job_asked_for_by_a_role_that_may_not_make_its_moves_fails_without_moving(sqlite_shop):
    """A bulk job runs with the role recorded when it was asked for: a support agent's
    refused bulk fulfil never reaches the worker, and a job forged with that role fails
    every order without touching it."""
    shop = sqlite_shop
    number = paid_order(shop)
    support = actor_named(shop, "support")
    with pytest.raises(PermissionDenied):
        jobs.enqueue(shop.db, support, "fulfill", order_numbers=[number])
    job = jobs.enqueue(shop.db, actor_named(shop, "ops"), "fulfill", order_numbers=[number])
    with shop.db.write() as conn:  # as if the role had been lowered meanwhile
        conn.execute(
            update(jobs_table)
            .where(jobs_table.c.id == job.id)
            .values(actor_role="support", actor=support.email)
        )
    finished = run_job_here(shop.db, job.id)
    assert (finished.succeeded, finished.failed) == (0, 1)
    assert "not allowed to fulfill orders" in jobs.job_failures(shop.db, job.id, actor=SYSTEM)[0]["reason"]
    assert order_detail(shop.db, number, actor=SYSTEM).status == "paid"


def test_nobody_but_the_owner_pays_for_a_customers_order_as_a_customer(sqlite_shop):
    shop = sqlite_shop
    number = declined_order(shop)
    stranger = shop.other_actor
    before = table_checksums(shop.db)
    with pytest.raises(PermissionDenied, match="not yours"):
        pay_order(shop.db, stranger, number, token="tok_visa")
    assert table_checksums(shop.db) == before
    assert pay_order(shop.db, shop.customer_actor, number, token="tok_visa").status == "paid"
