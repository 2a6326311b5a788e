"""The demo seed: catalog, customers, staff, and bulk orders consistent with the
order lifecycle, so the real services can act on seeded orders afterwards."""

from __future__ import annotations

import collections
import datetime as dt
import os
import shutil

import pytest
from sqlalchemy import func, insert, select

from orders_core import demo, demo_orders
from orders_core.authentication import sign_in_with_password
from orders_core.clock import utcnow
from orders_core.db import open_database
from orders_core.errors import RefundFailed
from orders_core.money import format_money
from orders_core.order_numbers import format_order_number
from orders_core.passwords import LOCKED, verify_password
from orders_core.payments.simulated import SimulatedGateway
from orders_core.schema import (
    addresses,
    customers,
    order_events,
    order_items,
    orders,
    payments,
    products,
    refunds,
    sim_charges,
    sim_refunds,
    skus,
    staff,
)
from orders_core.staff import Role
from tests.support import postgres as pg

STAFF_EMAILS = {
    "admin@ordersdesk.test",
    "ops@ordersdesk.test",
    "support@ordersdesk.test",
    "analyst@ordersdesk.test",
}
NOW = dt.datetime(2026, 6, 1, 12, 0, 0)


def _rows(db, table, order_by=None):
    with db.read() as conn:
        order_by = order_by or [table.primary_key.columns.values()[0]]
        return conn.execute(select(table).order_by(*order_by)).all()


def _by_order(rows):
    grouped = collections.defaultdict(list)
    for row in rows:
        grouped[row.order_id].append(row)
    return grouped


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ],
)
def seeded(request, tmp_path_factory):
    """(db, report): 3,000 orders seeded once per backend into a fresh database that
    the read-only tests below share."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("demo-seeded") / "orders.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        url, drop = f"sqlite:///{path}", None
    else:
        server = request.getfixturevalue("postgres_server")
        name = f"demo_seeded_{os.getpid()}"
        url = pg.create_database(server, name, template=request.getfixturevalue("postgres_template"))
        drop = lambda: pg.drop_database(server, name)  # noqa: E731
    db = open_database(url)
    report = demo.seed(db, orders=3000, random_seed=3)
    yield db, report
    db.dispose()
    if drop:
        drop()


# -- orders ---------------------------------------------------------------------------
def test_seeding_3000_orders_yields_every_status_in_about_the_planned_mix(seeded):
    db, report = seeded
    with db.read() as conn:
        counts = dict(conn.execute(select(orders.c.status, func.count()).group_by(orders.c.status)).all())
    assert counts == {s: n for s, n in report.by_status.items() if n}
    assert set(counts) == {"created", "paid", "fulfilled", "canceled", "returned"}
    assert sum(counts.values()) == report.orders == 3000
    share = {s: n / 3000 for s, n in counts.items()}
    assert share["created"] == pytest.approx(0.05, abs=0.02)
    assert share["paid"] == pytest.approx(0.25, abs=0.04)
    assert share["fulfilled"] == pytest.approx(0.45, abs=0.04)
    assert share["canceled"] == pytest.approx(0.15, abs=0.03)
    assert share["returned"] == pytest.approx(0.10, abs=0.03)
    canceled = [o for o in _rows(db, orders) if o.status == "canceled"]
    unpaid = [o for o in canceled if o.paid_at is None]
    assert 0.2 < len(unpaid) / len(canceled) < 0.45  # about a third canceled before payment
    assert report.elapsed_seconds > 0


def test_orders_have_numbers_from_their_ids_and_copy_the_customer(seeded):
    db, report = seeded
    people = {c.id: c for c in _rows(db, customers)}
    seeded_orders = _rows(db, orders)
    assert [o.id for o in seeded_orders] == list(range(1, 3001))
    assert (report.first_order_id, report.last_order_id) == (1, 3000)
    for o in seeded_orders:
        assert o.number == format_order_number(o.id)
        person = people[o.customer_id]
        assert (o.customer_email, o.customer_name) == (person.email, person.name)
        assert o.checkout_key is None
    assert len({o.customer_id for o in seeded_orders}) > 100  # spread over the customers


def test_totals_equal_the_sum_of_items_priced_from_active_skus_in_one_currency(seeded):
    db, _ = seeded
    catalog = {s.id: s for s in _rows(db, skus)}
    product_names = {p.id: p.name for p in _rows(db, products)}
    items = _by_order(_rows(db, order_items))
    currencies = set()
    for o in _rows(db, orders):
        lines = items[o.id]
        assert 1 <= len(lines) <= 3 and o.item_count == len(lines)
        assert len({line.sku_id for line in lines}) == len(lines)
        assert o.total_amount == sum(line.amount for line in lines) > 0
        for line in lines:
            sku = catalog[line.sku_id]
            assert sku.active and sku.currency == o.currency
            assert (line.sku_code, line.name, line.unit_amount) == (sku.code, sku.name, sku.unit_amount)
            assert line.product_name == product_names[sku.product_id]
            assert 1 <= line.quantity <= 3 and line.amount == line.unit_amount * line.quantity
        currencies.add(o.currency)
    assert {"usd", "eur", "gbp", "jpy"} <= currencies


def test_a_shipping_address_is_present_exactly_when_an_item_ships(seeded):
    db, _ = seeded
    ships = {s.id: p.shippable for s in _rows(db, skus) for p in _rows(db, products) if p.id == s.product_id}
    saved = {
        (a.customer_id, a.name, a.line1, a.line2, a.city, a.region, a.postal_code, a.country)
        for a in _rows(db, addresses)
    }
    have_saved = {a.customer_id for a in _rows(db, addresses)}
    items = _by_order(_rows(db, order_items))
    shipped = digital = 0
    for o in _rows(db, orders):
        address = (
            o.ship_name,
            o.ship_line1,
            o.ship_line2,
            o.ship_city,
            o.ship_region,
            o.ship_postal_code,
            o.ship_country,
        )
        if any(ships[line.sku_id] for line in items[o.id]):
            shipped += 1
            assert all(v is not None for v in address)
            assert o.ship_name and o.ship_line1 and o.ship_city and o.ship_postal_code
            assert len(o.ship_country) == 2 and o.ship_country.isupper()
            if o.customer_id in have_saved:  # one of the customer's saved addresses
                assert (o.customer_id, *address) in saved
        else:
            digital += 1
            assert all(v is None for v in address)
    assert shipped > 500 and digital > 500


def test_every_paid_order_has_one_succeeded_payment_matching_the_gateway_ledger(seeded):
    db, _ = seeded
    ledger = {c.id: c for c in _rows(db, sim_charges)}
    by_order = _by_order(_rows(db, payments))
    assert len(ledger) == sum(len(p) for p in by_order.values())
    for o in _rows(db, orders):
        succeeded = [p for p in by_order[o.id] if p.status == "succeeded"]
        if o.paid_at is None:
            assert succeeded == [] and o.status in ("created", "canceled")
            continue
        [p] = by_order[o.id]
        assert p.gateway == "simulated" and p.idempotency_key == f"{o.number}:charge:1"
        assert (p.amount, p.currency) == (o.total_amount, o.currency)
        assert p.gateway_payment_id.startswith("pi_sim_") and len(p.gateway_payment_id) == 31
        assert p.created_at == p.updated_at == o.paid_at and p.locked_until is None
        charge = ledger[p.gateway_payment_id]
        assert (charge.amount, charge.currency, charge.status) == (p.amount, p.currency, "succeeded")
        assert charge.reference == o.number and charge.decline_code is None and charge.card_brand


def test_declined_cards_leave_a_failed_payment_and_a_payment_failed_event(seeded):
    db, _ = seeded
    ledger = {c.id: c for c in _rows(db, sim_charges)}
    events = _by_order(_rows(db, order_events))
    failed = [p for p in _rows(db, payments) if p.status == "failed"]
    assert failed, "some created orders should show a declined card"
    statuses = {o.id: o for o in _rows(db, orders)}
    for p in failed:
        o = statuses[p.order_id]
        assert o.status == "created" and o.paid_at is None
        assert p.idempotency_key == f"{o.number}:charge:1" and p.failure_code and p.failure_message
        charge = ledger[p.gateway_payment_id]
        assert charge.status == "requires_payment_method" and charge.decline_code == p.failure_code
        [event] = [e for e in events[o.id] if e.action == "payment_failed"]
        assert (event.from_status, event.to_status, event.actor) == ("created", None, o.customer_email)
        assert event.note == f"Card declined: {p.failure_code} — {p.failure_message}"
        assert event.at == p.created_at


def test_refunded_orders_have_a_full_succeeded_refund_matching_the_gateway_ledger(seeded):
    db, _ = seeded
    pays = {p.id: p for p in _rows(db, payments)}
    ledger = {r.id: r for r in _rows(db, sim_refunds)}
    by_order = _by_order(_rows(db, refunds))
    refunded = 0
    for o in _rows(db, orders):
        if o.status == "returned" or (o.status == "canceled" and o.paid_at is not None):
            refunded += 1
            [r] = by_order[o.id]
            assert o.refunded_amount == o.total_amount == r.amount
            assert (r.status, r.gateway, r.currency) == ("succeeded", "simulated", o.currency)
            assert r.idempotency_key == f"{o.number}:refund:1"
            assert r.action == ("return" if o.status == "returned" else "cancel")
            assert r.actor in STAFF_EMAILS - {"analyst@ordersdesk.test"} and r.reason
            assert r.created_at == r.updated_at == (o.returned_at or o.canceled_at)
            payment = pays[r.payment_id]
            assert payment.order_id == o.id and payment.status == "succeeded"
            entry = ledger[r.gateway_refund_id]
            assert (entry.charge_id, entry.amount, entry.currency, entry.reference) == (
                payment.gateway_payment_id,
                r.amount,
                r.currency,
                r.idempotency_key,
            )
        else:
            assert o.refunded_amount == 0 and by_order[o.id] == []
    assert refunded == len(ledger) > 0


def test_the_timeline_has_one_event_per_status_change_and_rebuilds_the_status(seeded):
    db, _ = seeded
    events = _by_order(_rows(db, order_events))
    expected_actions = {
        "created": ["create"],
        "paid": ["create", "pay"],
        "fulfilled": ["create", "pay", "fulfill"],
        "returned": ["create", "pay", "fulfill", "return"],
    }
    for o in _rows(db, orders):
        timeline = events[o.id]
        assert [e.id for e in timeline] == sorted(e.id for e in timeline)
        changes = [e for e in timeline if e.to_status is not None]
        status = None
        for e in changes:
            assert e.from_status == status
            status = e.to_status
        assert status == o.status
        actions = [e.action for e in changes]
        if o.status == "canceled":
            assert actions in (["create", "cancel"], ["create", "pay", "cancel"])
            assert (actions == ["create", "pay", "cancel"]) == (o.paid_at is not None)
        else:
            assert actions == expected_actions[o.status]
        stamps = {
            "create": o.created_at,
            "pay": o.paid_at,
            "fulfill": o.fulfilled_at,
            "cancel": o.canceled_at,
            "return": o.returned_at,
        }
        for e in changes:
            assert e.at == stamps[e.action] and e.job_id is None
            if e.action in ("create", "pay"):
                assert e.actor == o.customer_email
            elif e.action == "fulfill":
                assert e.actor in {"ops@ordersdesk.test", "admin@ordersdesk.test"}
            else:
                assert e.actor in STAFF_EMAILS - {"analyst@ordersdesk.test"}
        money = format_money(o.total_amount, o.currency)
        pay = [e for e in changes if e.action == "pay"]
        if pay:
            assert pay[0].note.startswith(f"Charged {money} via simulated (pi_sim_")
        for e in changes:
            if e.action in ("cancel", "return") and o.refunded_amount:
                assert f"Refunded {money} (re_sim_" in e.note
        assert [e.action for e in timeline if e.to_status is None] in ([], ["payment_failed"])


def test_timestamps_are_ordered_and_in_the_past(db):
    before = utcnow()
    demo.seed(db, orders=1000)
    after = utcnow()
    for o in _rows(db, orders):
        assert before - dt.timedelta(days=181) < o.created_at
        steps = [o.created_at, o.paid_at, o.fulfilled_at, o.canceled_at or o.returned_at]
        steps = [s for s in steps if s is not None]
        assert steps == sorted(steps) and len(set(steps)) == len(steps)
        assert o.updated_at == steps[-1] <= after
        if o.canceled_at:
            assert o.returned_at is None and o.fulfilled_at is None
        if o.returned_at:
            assert o.fulfilled_at is not None


def test_older_orders_are_more_often_fulfilled_and_recent_ones_more_often_open(db):
    demo.seed(db, orders=2500, now=NOW)
    recent = [o.status for o in _rows(db, orders) if o.created_at > NOW - dt.timedelta(days=14)]
    older = [o.status for o in _rows(db, orders) if o.created_at < NOW - dt.timedelta(days=30)]
    open_share = lambda statuses: sum(s in ("created", "paid") for s in statuses) / len(statuses)  # noqa: E731
    assert open_share(recent) > open_share(older) + 0.15
    assert min(o.created_at for o in _rows(db, orders)) >= NOW - dt.timedelta(days=180)


# -- seeding again ---------------------------------------------------------------------
def test_seeding_twice_appends_orders_without_duplicating_catalog_customers_or_staff(db):
    first = demo.seed(db, orders=500, random_seed=1)
    with db.read() as conn:
        counted = {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (products, skus, customers, addresses, staff)
        }
    second = demo.seed(db, orders=700, random_seed=1)
    with db.read() as conn:
        again = {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (products, skus, customers, addresses, staff)
        }
        total = conn.execute(select(func.count()).select_from(orders)).scalar_one()
        numbers = conn.execute(select(func.count(orders.c.number.distinct()))).scalar_one()
    assert again == counted
    assert counted["customers"] == 201 and counted["staff"] == 4
    assert (first.first_order_id, first.last_order_id) == (1, 500)
    assert (second.first_order_id, second.last_order_id) == (501, 1200)
    assert total == numbers == 1200
    # The same random_seed again still gives new gateway ids (they are unique keys).
    assert len({c.id for c in _rows(db, sim_charges)}) == len(_rows(db, payments))


def test_ids_continue_after_rows_made_by_the_services(db):
    demo.seed(db, orders=200)
    demo.seed(db, orders=300)
    # After seeding, ordinary inserts (which let the database pick the id) still work:
    # on PostgreSQL the serials must have been moved past the seeded ids.
    with db.write() as conn:
        person = conn.execute(select(customers).limit(1)).one()
        sku = conn.execute(select(skus).where(skus.c.active.is_(True)).limit(1)).one()
        now = utcnow()
        order_id = conn.execute(
            insert(orders).values(
                number="pending",
                customer_id=person.id,
                customer_email=person.email,
                customer_name=person.name,
                status="created",
                currency=sku.currency,
                total_amount=sku.unit_amount,
                refunded_amount=0,
                item_count=1,
                created_at=now,
                updated_at=now,
            )
        ).inserted_primary_key[0]
        conn.execute(
            insert(order_items).values(
                order_id=order_id,
                sku_id=sku.id,
                sku_code=sku.code,
                name=sku.name,
                product_name="x",
                quantity=1,
                unit_amount=sku.unit_amount,
                amount=sku.unit_amount,
            )
        )
        conn.execute(
            insert(order_events).values(
                order_id=order_id,
                at=now,
                actor=person.email,
                action="create",
                from_status=None,
                to_status="created",
                note="Checkout",
            )
        )
        payment_id = conn.execute(
            insert(payments).values(
                order_id=order_id,
                gateway="simulated",
                amount=sku.unit_amount,
                currency=sku.currency,
                status="pending",
                idempotency_key="k1",
                created_at=now,
                updated_at=now,
            )
        ).inserted_primary_key[0]
        conn.execute(
            insert(refunds).values(
                order_id=order_id,
                payment_id=payment_id,
                gateway="simulated",
                amount=1,
                currency=sku.currency,
                status="pending",
                idempotency_key="r1",
                action="cancel",
                actor="support@ordersdesk.test",
                reason="",
                created_at=now,
                updated_at=now,
            )
        )
    assert order_id == 501
    third = demo.seed(db, orders=10)
    assert third.first_order_id == 502


def test_an_order_written_by_someone_else_between_batches_is_stepped_around(db, monkeypatch):
    """Batches are generated ahead for the ids expected next; when another writer took
    ids in between, the batch is made again for the ids actually free."""
    demo.ensure_demo_customers(db, count=20)
    monkeypatch.setattr(demo_orders, "_BATCH", 100)
    reserve, calls = demo_orders._reserve_ids, []

    def reserve_after_a_checkout(db_, conn, n):
        calls.append(n)
        if len(calls) == 2:
            person = conn.execute(select(customers).limit(1)).one()
            conn.execute(
                insert(orders).values(
                    number="ORD-SOMEONE",
                    customer_id=person.id,
                    customer_email=person.email,
                    customer_name=person.name,
                    status="created",
                    currency="usd",
                    total_amount=999,
                    refunded_amount=0,
                    item_count=0,
                    created_at=utcnow(),
                    updated_at=utcnow(),
                )
            )
        return reserve(db_, conn, n)

    monkeypatch.setattr(demo_orders, "_reserve_ids", reserve_after_a_checkout)
    report = demo.seed(db, orders=350)
    assert calls == [100, 100, 100, 50]
    assert (report.first_order_id, report.last_order_id) == (1, 351)
    seeded_orders = [o for o in _rows(db, orders) if o.number != "ORD-SOMEONE"]
    assert [o.id for o in seeded_orders] == [i for i in range(1, 352) if i != 101]
    items, events = _by_order(_rows(db, order_items)), _by_order(_rows(db, order_events))
    for o in seeded_orders:
        assert o.number == format_order_number(o.id)
        assert o.total_amount == sum(line.amount for line in items[o.id])
        assert [e.to_status for e in events[o.id] if e.to_status][-1] == o.status


def test_the_same_random_seed_gives_the_same_data(sqlite_db, tmp_path):
    other = open_database(f"sqlite:///{tmp_path}/second.db")
    demo.seed(sqlite_db, orders=800, random_seed=11, now=NOW)
    demo.seed(other, orders=800, random_seed=11, now=NOW)
    tables = (
        orders,
        order_items,
        order_events,
        payments,
        refunds,
        sim_charges,
        sim_refunds,
        customers,
        addresses,
        products,
        skus,
    )

    def snapshot(db):
        data = {}
        for table in tables:
            rows = [r._asdict() for r in _rows(db, table)]
            if table is customers:  # the demo customer's hash has its own random salt
                for r in rows:
                    r["password_hash"] = r["password_hash"] == LOCKED
            data[table.name] = rows
        return data

    assert snapshot(sqlite_db) == snapshot(other)
    third = open_database(f"sqlite:///{tmp_path}/third.db")
    demo.seed(third, orders=800, random_seed=12, now=NOW)
    assert _rows(third, orders) != _rows(sqlite_db, orders)


# -- the simulated gateway accepts the seeded books --------------------------------------
def test_a_seeded_paid_order_can_be_refunded_through_the_simulated_gateway(db):
    demo.seed(db, orders=300)
    gateway = SimulatedGateway(db)
    with db.read() as conn:
        paid = conn.execute(
            select(orders, payments.c.gateway_payment_id)
            .join(payments, payments.c.order_id == orders.c.id)
            .where(orders.c.status == "paid")
            .limit(1)
        ).one()
        returned = conn.execute(
            select(orders, refunds.c.gateway_refund_id, payments.c.gateway_payment_id)
            .join(refunds, refunds.c.order_id == orders.c.id)
            .join(payments, payments.c.id == refunds.c.payment_id)
            .where(orders.c.status == "returned")
            .limit(1)
        ).one()
    charge = gateway.retrieve_payment(paid.gateway_payment_id)
    assert charge.succeeded and charge.amount == paid.total_amount
    key = f"{paid.number}:refund:1"
    refund = gateway.refund(
        paid.gateway_payment_id, amount=paid.total_amount, idempotency_key=key, reference=key
    )
    assert refund.amount == paid.total_amount and refund.status == "succeeded"
    # An order the seed already refunded in full has nothing left to refund.
    [earlier] = gateway.list_refunds(returned.gateway_payment_id)
    assert earlier.refund_id == returned.gateway_refund_id
    assert earlier.reference == f"{returned.number}:refund:1"
    with pytest.raises(RefundFailed):
        gateway.refund(
            returned.gateway_payment_id, amount=1, idempotency_key="x:refund:2", reference="x:refund:2"
        )


def test_the_services_carry_seeded_orders_on_through_their_lifecycle(db):
    from orders_core.checkout import pay_order
    from orders_core.lifecycle import cancel_order, fulfill_order, return_order
    from orders_core.staff import SYSTEM, find_staff

    demo.seed(db, orders=400)
    support = find_staff(db, "support@ordersdesk.test").as_actor()
    ops = find_staff(db, "ops@ordersdesk.test").as_actor()
    with db.read() as conn:

        def in_status(status):
            return conn.execute(select(orders).where(orders.c.status == status).order_by(orders.c.id)).all()

        paid, other_paid, fulfilled = in_status("paid")[0], in_status("paid")[-1], in_status("fulfilled")[0]
        declined = conn.execute(
            select(orders)
            .join(payments, payments.c.order_id == orders.c.id)
            .where(payments.c.status == "failed")
            .limit(1)
        ).one()

    cancel_order(db, support, paid.number, reason="Customer request")
    fulfill_order(db, ops, other_paid.number)
    return_order(db, support, fulfilled.number, reason="Damaged in transit")
    pay_order(db, SYSTEM, declined.number, token="tok_visa")  # the card's second attempt

    with db.read() as conn:
        now = {
            o.id: o
            for o in conn.execute(
                select(orders).where(orders.c.id.in_([paid.id, other_paid.id, fulfilled.id, declined.id]))
            )
        }
        keys = conn.execute(
            select(payments.c.idempotency_key, payments.c.status)
            .where(payments.c.order_id == declined.id)
            .order_by(payments.c.id)
        ).all()
        refund_keys = (
            conn.execute(
                select(refunds.c.idempotency_key)
                .where(refunds.c.order_id.in_([paid.id, fulfilled.id]))
                .order_by(refunds.c.id)
            )
            .scalars()
            .all()
        )
    assert (now[paid.id].status, now[paid.id].refunded_amount) == ("canceled", paid.total_amount)
    assert now[other_paid.id].status == "fulfilled"
    assert (now[fulfilled.id].status, now[fulfilled.id].refunded_amount) == (
        "returned",
        fulfilled.total_amount,
    )
    assert now[declined.id].status == "paid"
    assert [tuple(k) for k in keys] == [
        (f"{declined.number}:charge:1", "failed"),
        (f"{declined.number}:charge:2", "succeeded"),
    ]
    assert sorted(refund_keys) == sorted([f"{paid.number}:refund:1", f"{fulfilled.number}:refund:1"])


# -- catalog, customers, staff -------------------------------------------------------------
def test_the_demo_catalog_is_idempotent_and_varied(db):
    demo.ensure_demo_catalog(db)
    demo.ensure_demo_catalog(db)
    listing = _rows(db, skus)
    goods = {p.id: p for p in _rows(db, products)}
    codes = [s.code for s in listing]
    assert len(codes) == len(set(codes)) and 10 <= len(codes) <= 16
    assert {"BOX-MONTHLY-USD", "PASS-DAY-EUR", "RETIRED-MUG"} <= set(codes)
    assert [s.code for s in listing if not s.active] == ["RETIRED-MUG"]
    assert {s.currency for s in listing} >= {"usd", "eur", "gbp", "jpy"}
    assert all(s.unit_amount > 0 and s.currency == s.currency.lower() for s in listing)
    assert {p.shippable for p in goods.values()} == {True, False}
    assert all(p.active and p.description for p in goods.values())
    for currency in ("usd", "eur", "gbp", "jpy"):
        sold = [goods[s.product_id].shippable for s in listing if s.currency == currency and s.active]
        assert True in sold and False in sold, currency


def test_the_demo_customer_can_sign_in_and_generated_customers_cannot(db):
    demo.ensure_demo_customers(db, count=50)
    demo.ensure_demo_customers(db, count=50)
    people = _rows(db, customers)
    assert len(people) == 51
    [me] = [c for c in people if c.email == "customer@ordersdesk.test"]
    assert me.name == "Demo Customer" and verify_password(me.password_hash, "demo-password")
    assert me.password_hash.startswith("$argon2id$")
    [saved] = [a for a in _rows(db, addresses) if a.customer_id == me.id]
    assert saved.country == "US"
    others = [c for c in people if c.id != me.id]
    assert all(
        c.password_hash == LOCKED and not verify_password(c.password_hash, "demo-password") for c in others
    )
    assert all(c.email_key == c.email.lower() for c in people)
    assert len({c.email_key for c in people}) == 51
    names = {c.name for c in others}
    assert {"Zoë Ødegård", "José Núñez", 'O\'Brien, "Pat"'} <= names
    assert len(names) > 30
    per_customer = collections.Counter(a.customer_id for a in _rows(db, addresses))
    assert set(per_customer.values()) <= {1, 2} and 2 in per_customer.values()
    assert any(c.id not in per_customer for c in others)
    assert len({a.country for a in _rows(db, addresses)}) >= 5
    # Asking for more adds only the missing ones, and keeps the first ones as they were.
    demo.ensure_demo_customers(db, count=80)
    more = _rows(db, customers)
    assert len(more) == 81 and more[:51] == people


def test_the_demo_staff_have_one_account_per_role(db):
    demo.ensure_demo_staff(db)
    demo.ensure_demo_staff(db)
    accounts = {s.email: s for s in _rows(db, staff)}
    assert set(accounts) == STAFF_EMAILS
    assert {a.role for a in accounts.values()} == {r.value for r in Role}
    assert sign_in_with_password(db, "admin@ordersdesk.test", "demo-password").account.role == Role.ADMIN
    assert sign_in_with_password(db, "analyst@ordersdesk.test", "demo-password").account.role == Role.ANALYST
