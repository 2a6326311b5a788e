"""Checkout: creating an order and charging the card, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from orders_core import checkout, customers
from orders_core.checkout import CartItem, payment_in_flight, place_order, submit_checkout
from orders_core.customers import AddressInput
from orders_core.errors import AuthenticationError, CardDeclined, InvalidToken, ValidationError
from orders_core.order_detail import OrderItem
from orders_core.payments import Gateways
from orders_core.payments.card_tokens import TEST_TOKENS
from orders_core.schema import Base, orders, payments, sim_charges
from orders_core.staff import SYSTEM
from tests.integration.conftest import HOME, row_counts
from tests.support.fakes import AfterNth, CrashingGateway, InterleavingDatabase, SimulatedCrash


def test_a_digital_purchase_is_created_then_paid_with_items_total_payment_and_timeline(customer, db):
    order = place_order(db, customer, items=[CartItem("PASS-USD", 3)], token="tok_visa")

    assert order.number.startswith("ORD-")
    assert order.status == "paid"
    assert order.items == (
        OrderItem(
            sku="PASS-USD", name="Day pass", product="Digital pass", quantity=3, unit_amount=500, amount=1500
        ),
    )
    assert (order.total_amount, order.currency, order.refunded_amount) == (1500, "usd", 0)
    assert order.shipping_address is None
    assert order.payment.status == "succeeded"
    assert order.payment.amount == 1500
    assert order.payment.gateway_payment_id.startswith("pi_sim_")
    assert [(e.kind, e.from_status, e.to_status) for e in order.events] == [
        ("create", None, "created"),
        ("pay", "created", "paid"),
    ]
    assert order.events[0].actor == "Ada@Example.test"
    assert order.paid_at is not None


def test_a_shippable_purchase_keeps_the_new_address_on_the_order_and_saves_it(customer, db):
    order = place_order(db, customer, items=[("BOX-USD", 1)], token="pm_card_visa", address=HOME)
    assert order.shipping_address.line1 == "12 St James's Square"
    assert order.shipping_address.country == "GB"
    assert [a.line1 for a in customers.list_addresses(db, customer)] == ["12 St James's Square"]


def test_a_saved_address_of_the_customer_can_be_used(customer, db):
    saved = customers.add_address(db, customer, HOME)
    order = place_order(db, customer, items=[("BOX-USD", 2)], token="tok_visa", address_id=saved.id)
    assert order.shipping_address.city == "London"
    assert order.total_amount == 3998


def test_unit_prices_are_those_at_the_time_of_purchase(customer, db):
    from sqlalchemy import update

    from orders_core.schema import skus

    order = place_order(db, customer, items=[("PASS-USD", 1)], token="tok_visa")
    with db.write() as conn:
        conn.execute(update(skus).where(skus.c.code == "PASS-USD").values(unit_amount=999))
    from orders_core.queries import order_detail

    assert order_detail(db, order.number, actor=SYSTEM).items[0].unit_amount == 500


REFUSED = [
    ("unknown SKU", dict(items=[("NOPE", 1)]), "Unknown SKU"),
    ("inactive SKU", dict(items=[("MUG-OLD", 1)], address=HOME), "no longer for sale"),
    ("zero quantity", dict(items=[("PASS-USD", 0)]), "between 1 and 999"),
    ("quantity over 999", dict(items=[("PASS-USD", 1000)]), "between 1 and 999"),
    ("merged lines over 999", dict(items=[("PASS-USD", 600), ("PASS-USD", 600)]), "between 1 and 999"),
    ("negative quantity", dict(items=[("PASS-USD", -1)]), "between 1 and 999"),
    ("fractional quantity", dict(items=[("PASS-USD", 1.5)]), "whole number"),
    ("quantity as words", dict(items=[("PASS-USD", "two")]), "whole number"),
    ("boolean quantity", dict(items=[("PASS-USD", True)]), "whole number"),
    ("no items", dict(items=[]), "at least one item"),
    ("missing address for shippable goods", dict(items=[("BOX-USD", 1)]), "shipping address is required"),
    ("mixed currencies", dict(items=[("PASS-USD", 1), ("PASS-EUR", 1)]), "one currency"),
    (
        "bad country",
        dict(items=[("BOX-USD", 1)], address=AddressInput("A", "1 St", "X", "1", "Narnia")),
        "two-letter",
    ),
    (
        "control characters in address",
        dict(items=[("BOX-USD", 1)], address=AddressInput("A\x00", "1 St", "X", "1", "GB")),
        "control",
    ),
    (
        "huge address line",
        dict(items=[("BOX-USD", 1)], address=AddressInput("A", "x" * 10_000, "X", "1", "GB")),
        "too long",
    ),
    ("too many lines", dict(items=[(f"SKU{i}", 1) for i in range(51)]), "at most 50"),
]


@pytest.mark.parametrize("case,kwargs,message", REFUSED, ids=[c[0] for c in REFUSED])
def test_refused_checkout_input_explains_itself_and_stores_nothing(customer, db, case, kwargs, message):
    before = row_counts(db)
    with pytest.raises(ValidationError) as refused:
        place_order(db, customer, token="tok_visa", **kwargs)
    assert message in str(refused.value)
    assert row_counts(db) == before


def test_another_customers_address_is_refused_and_nothing_is_stored(customer, other_customer, db):
    theirs = customers.add_address(db, other_customer, HOME)
    before = row_counts(db)
    with pytest.raises(ValidationError, match="not one of your saved addresses"):
        place_order(db, customer, items=[("BOX-USD", 1)], token="tok_visa", address_id=theirs.id)
    assert row_counts(db) == before


def test_checkout_requires_a_signed_in_customer(catalog):
    before = row_counts(catalog)
    with pytest.raises(AuthenticationError, match="Sign in"):
        place_order(catalog, None, items=[("PASS-USD", 1)], token="tok_visa")
    assert row_counts(catalog) == before


@pytest.mark.parametrize("token", ["sk_test_abcdefghijklmnop", "4000 0000 0000 0002", "tok_visa<script>"])
def test_a_secret_key_or_card_number_pasted_as_token_is_refused_and_nothing_is_stored(customer, db, token):
    before = row_counts(db)
    with pytest.raises(InvalidToken):
        place_order(db, customer, items=[("PASS-USD", 1)], token=token)
    assert row_counts(db) == before


SUCCEEDING = [t for t in TEST_TOKENS.values() if t.decline_code is None]
DECLINING = [t for t in TEST_TOKENS.values() if t.decline_code]


@pytest.mark.parametrize("token", [t.token for t in SUCCEEDING])
def test_each_succeeding_test_token_pays_the_order(customer, db, token):
    assert place_order(db, customer, items=[("PASS-EUR", 1)], token=token).status == "paid"


@pytest.mark.parametrize("token,code", [(t.token, t.decline_code) for t in DECLINING])
def test_each_declining_test_token_leaves_the_order_created_with_the_reason_in_its_timeline(
    customer, db, token, code
):
    with pytest.raises(CardDeclined) as declined:
        place_order(db, customer, items=[("PASS-USD", 1)], token=token)
    assert declined.value.code == code
    assert code in str(declined.value)
    from orders_core.queries import OrderFilters, list_orders, order_detail

    [row] = list_orders(db, OrderFilters(), actor=SYSTEM).rows
    order = order_detail(db, row["number"], actor=SYSTEM)
    assert order.status == "created"
    assert order.payment.status == "failed"
    assert order.payment.failure_code == code
    failed = [e for e in order.events if e.kind == "payment_failed"]
    assert len(failed) == 1 and code in failed[0].note


def test_insufficient_funds_is_named_in_the_error(customer, db):
    with pytest.raises(CardDeclined, match="insufficient funds"):
        place_order(db, customer, items=[("PASS-USD", 1)], token="tok_chargeDeclinedInsufficientFunds")


def test_an_unknown_token_is_invalid_and_the_order_stays_created(customer, db):
    with pytest.raises(InvalidToken):
        place_order(db, customer, items=[("PASS-USD", 1)], token="tok_doesNotExist")


def test_a_declined_order_can_be_paid_later_with_another_card(customer, db):
    with pytest.raises(CardDeclined):
        place_order(db, customer, items=[("PASS-USD", 1)], token="tok_chargeDeclined")
    paid = checkout.pay_order(db, SYSTEM, "ORD-000001", token="tok_mastercard")
    assert paid.status == "paid"
    assert [p.status for p in paid.payment_attempts] == ["failed", "succeeded"]


def test_a_repeated_checkout_key_returns_the_first_order_and_charges_once(customer, db):
    first = place_order(db, customer, items=[("PASS-USD", 2)], token="tok_visa", checkout_key="form-1")
    again = place_order(db, customer, items=[("PASS-USD", 2)], token="tok_visa", checkout_key="form-1")
    assert again.number == first.number
    with db.read() as conn:
        assert (
            conn.execute(
                select(func.count()).select_from(sim_charges).where(sim_charges.c.status == "succeeded")
            ).scalar_one()
            == 1
        )


def test_a_checkout_key_reused_with_different_items_is_refused(customer, db):
    place_order(db, customer, items=[("PASS-USD", 2)], token="tok_visa", checkout_key="form-1")
    before = row_counts(db)
    with pytest.raises(ValidationError, match="already submitted"):
        place_order(db, customer, items=[("PASS-USD", 3)], token="tok_visa", checkout_key="form-1")
    assert row_counts(db) == before


def test_a_crash_after_the_card_was_charged_is_settled_without_charging_again(customer, db, monkeypatch):
    monkeypatch.setenv("ORDERS_PAYMENT_LEASE_SECONDS", "0")  # the dead process's lease is over
    crashing = CrashingGateway(Gateways(db).default, crash_after="confirm_payment")
    with pytest.raises(SimulatedCrash):
        place_order(
            db, customer, items=[("PASS-USD", 1)], token="tok_visa", gateways=Gateways(db).use(crashing)
        )
    from orders_core.queries import order_detail

    assert order_detail(db, "ORD-000001", actor=SYSTEM).status == "created"

    # The retry asks the gateway what became of the pending charge instead of charging again.
    order = checkout.pay_order(db, SYSTEM, "ORD-000001", token="tok_visa")
    assert order.status == "paid"
    with db.read() as conn:
        assert (
            conn.execute(
                select(func.count()).select_from(sim_charges).where(sim_charges.c.status == "succeeded")
            ).scalar_one()
            == 1
        )
        assert (
            conn.execute(
                select(func.count()).select_from(payments).where(payments.c.status == "succeeded")
            ).scalar_one()
            == 1
        )
    assert [(e.kind, e.to_status) for e in order.events].count(("pay", "paid")) == 1


def test_an_order_never_creates_an_invoice():
    assert not [name for name in Base.metadata.tables if "invoice" in name]


# -- submitting a checkout again: the one resume policy of the page and the CLI ---------------
def _charges(db, status: str) -> int:
    with db.read() as conn:
        return conn.execute(
            select(func.count()).select_from(sim_charges).where(sim_charges.c.status == status)
        ).scalar_one()


def test_submitting_a_declined_checkout_again_pays_that_order_with_the_new_card(customer, db):
    with pytest.raises(CardDeclined) as declined:
        submit_checkout(
            db, customer, items=[("PASS-USD", 1)], token="tok_chargeDeclined", checkout_key="form-1"
        )
    assert declined.value.order_number == "ORD-000001"

    order = submit_checkout(db, customer, items=[("PASS-USD", 1)], token="tok_visa", checkout_key="form-1")

    assert (order.number, order.status) == ("ORD-000001", "paid")
    assert [p.status for p in order.payment_attempts] == ["failed", "succeeded"]


def test_submitting_a_paid_checkout_again_returns_it_as_it_is_without_charging(customer, db):
    first = submit_checkout(db, customer, items=[("PASS-USD", 2)], token="tok_visa", checkout_key="form-1")
    again = submit_checkout(
        db, customer, items=[("PASS-USD", 2)], token="tok_mastercard", checkout_key="form-1"
    )
    assert again.number == first.number and again.status == "paid"
    assert _charges(db, "succeeded") == 1


def test_a_checkout_whose_payment_is_under_way_is_returned_without_a_second_charge(customer, db):
    crashing = CrashingGateway(Gateways(db).default, crash_after="create_payment")
    with pytest.raises(SimulatedCrash):  # the process died mid-charge; its lease still runs
        submit_checkout(
            db,
            customer,
            items=[("PASS-USD", 1)],
            token="tok_visa",
            checkout_key="form-1",
            gateways=Gateways(db).use(crashing),
        )

    order = submit_checkout(db, customer, items=[("PASS-USD", 1)], token="tok_visa", checkout_key="form-1")

    assert order.status == "created" and payment_in_flight(order)
    assert [p.status for p in order.payment_attempts] == ["pending"]


def meeting_after_each_threads_first_read(threads: int):
    """An `after` under which each thread's first read waits for the other threads':
    every submit looks the checkout key up before any has inserted its order."""
    barrier, seen = threading.Barrier(threads, timeout=30), threading.local()

    def after(kind: str) -> None:
        if kind == "read" and not getattr(seen, "done", False):
            seen.done = True
            barrier.wait()

    return after


def test_two_concurrent_submits_of_one_checkout_make_one_order_and_both_succeed(customer, db):
    racing = InterleavingDatabase(db, meeting_after_each_threads_first_read(2))
    gateways = Gateways(db)
    results, errors = [], []

    def submit():
        try:
            results.append(
                submit_checkout(
                    racing,
                    customer,
                    items=[("PASS-USD", 1)],
                    token="tok_visa",
                    checkout_key="form-1",
                    gateways=gateways,
                )
            )
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == [] and len(results) == 2
    assert {r.number for r in results} == {"ORD-000001"}
    with db.read() as conn:
        assert conn.execute(select(func.count()).select_from(orders)).scalar_one() == 1
    assert _charges(db, "succeeded") == 1
    from orders_core.queries import order_detail

    assert order_detail(db, "ORD-000001", actor=SYSTEM).status == "paid"


def test_a_resubmit_that_finds_the_order_paid_meanwhile_returns_it_without_charging(customer, db):
    with pytest.raises(CardDeclined):
        submit_checkout(
            db, customer, items=[("PASS-USD", 1)], token="tok_chargeDeclined", checkout_key="form-1"
        )
    # This submit reads the checkout (key lookup, then the order: still Created); the
    # other tab pays it before this one gets to pay.
    other_tab = AfterNth(
        "read",
        2,
        lambda: submit_checkout(
            db, customer, items=[("PASS-USD", 1)], token="tok_visa", checkout_key="form-1"
        ),
    )
    racing = InterleavingDatabase(db, other_tab)

    order = submit_checkout(
        racing, customer, items=[("PASS-USD", 1)], token="tok_mastercard", checkout_key="form-1"
    )

    assert other_tab.done
    assert (order.number, order.status) == ("ORD-000001", "paid")
    assert [p.status for p in order.payment_attempts] == ["failed", "succeeded"]
    assert _charges(db, "succeeded") == 1
