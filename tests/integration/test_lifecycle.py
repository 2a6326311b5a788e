"""Fulfil, cancel and return, with automatic full refunds that survive crashes."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from orders_core import lifecycle
from orders_core.checkout import place_order
from orders_core.errors import GatewayUnavailable, InProgress, PermissionDenied, RefundFailed
from orders_core.payments import Gateways
from orders_core.queries import order_detail
from orders_core.schema import refunds, sim_refunds
from orders_core.staff import SYSTEM, Actor, Role
from orders_core.status import IllegalMove
from tests.integration.conftest import row_counts
from tests.support.fakes import CrashingGateway, FlakyGateway, SimulatedCrash

SUPPORT = Actor("support@ordersdesk.test", Role.SUPPORT)
OPS = Actor("ops@ordersdesk.test", Role.OPS)
ANALYST = Actor("analyst@ordersdesk.test", Role.ANALYST)


@pytest.fixture
def paid_order(customer, db):
    return place_order(db, customer, items=[("PASS-USD", 2)], token="tok_visa").number


@pytest.fixture
def fulfilled_order(db, paid_order):
    lifecycle.fulfill_order(db, OPS, paid_order)
    return paid_order


def gateway_refunds(db, number) -> list[int]:
    """What the gateway's own ledger paid back for the order."""
    from orders_core.schema import sim_charges

    with db.read() as conn:
        return [
            r.amount
            for r in conn.execute(
                select(sim_refunds.c.amount)
                .join(sim_charges, sim_charges.c.id == sim_refunds.c.charge_id)
                .where(sim_charges.c.reference == number)
            )
        ]


def status_changes(order) -> list[tuple]:
    return [(e.kind, e.from_status, e.to_status) for e in order.events if e.to_status]


def test_cancelling_a_paid_order_refunds_it_in_full_once(db, paid_order):
    order = lifecycle.cancel_order(db, SUPPORT, paid_order, reason="Customer changed their mind")
    assert order.status == "canceled"
    assert order.refunded_amount == order.total_amount == 1000
    assert [r.status for r in order.refunds] == ["succeeded"]
    assert gateway_refunds(db, paid_order) == [1000]
    cancel = order.events[-1]
    assert (cancel.actor, cancel.from_status, cancel.to_status) == (
        SUPPORT.email,
        "paid",
        "canceled",
    )
    assert "Customer changed their mind" in cancel.note and "Refunded $10.00" in cancel.note
    assert order.canceled_at is not None


def test_cancelling_a_created_order_refunds_nothing(customer, db):
    from orders_core.errors import CardDeclined

    with pytest.raises(CardDeclined):
        place_order(db, customer, items=[("PASS-USD", 1)], token="tok_chargeDeclined")
    order = lifecycle.cancel_order(db, SUPPORT, "ORD-000001")
    assert order.status == "canceled" and order.refunded_amount == 0 and order.refunds == ()


def test_fulfilling_then_returning_refunds_in_full(db, fulfilled_order):
    order = lifecycle.return_order(db, SUPPORT, fulfilled_order, reason="Damaged in transit")
    assert order.status == "returned"
    assert order.refunded_amount == 1000
    assert gateway_refunds(db, fulfilled_order) == [1000]
    assert status_changes(order) == [
        ("create", None, "created"),
        ("pay", "created", "paid"),
        ("fulfill", "paid", "fulfilled"),
        ("return", "fulfilled", "returned"),
    ]
    assert order.events[2].actor == OPS.email


@pytest.mark.parametrize(
    "move,setup",
    [
        ("fulfill", "fulfilled"),
        ("cancel", "fulfilled"),
        ("return", "paid"),
    ],
)
def test_an_illegal_move_is_refused_by_name_and_changes_nothing(db, paid_order, move, setup):
    if setup == "fulfilled":
        lifecycle.fulfill_order(db, OPS, paid_order)
    before = row_counts(db)
    with pytest.raises(IllegalMove) as refused:
        getattr(lifecycle, f"{move}_order")(db, SYSTEM, paid_order)
    assert str(refused.value).startswith(
        f"Order {paid_order} is {setup.capitalize()}; {move.capitalize()} applies to"
    )
    assert row_counts(db) == before


@pytest.mark.parametrize("final", ["canceled", "returned"])
def test_canceled_and_returned_orders_accept_no_further_move(db, paid_order, final):
    if final == "canceled":
        lifecycle.cancel_order(db, SYSTEM, paid_order)
    else:
        lifecycle.fulfill_order(db, SYSTEM, paid_order)
        lifecycle.return_order(db, SYSTEM, paid_order)
    assert order_detail(db, paid_order, actor=SYSTEM).status == final
    before = row_counts(db)
    for move in ("fulfill", "cancel", "return"):
        with pytest.raises(IllegalMove, match=f"is {final.capitalize()};"):
            getattr(lifecycle, f"{move}_order")(db, SYSTEM, paid_order)
    assert row_counts(db) == before
    assert gateway_refunds(db, paid_order) == [1000]  # refunded once, by the final move


def test_an_analyst_cannot_cancel_and_nothing_changes(db, paid_order):
    before = row_counts(db)
    with pytest.raises(PermissionDenied, match="analyst@ordersdesk.test is not allowed to cancel orders"):
        lifecycle.cancel_order(db, ANALYST, paid_order)
    assert row_counts(db) == before


def test_support_cannot_fulfill(db, paid_order):
    with pytest.raises(PermissionDenied):
        lifecycle.fulfill_order(db, SUPPORT, paid_order)


def test_a_refused_refund_leaves_the_order_paid_and_records_why(customer, db):
    number = place_order(db, customer, items=[("PASS-USD", 1)], token="tok_refundFail").number
    with pytest.raises(RefundFailed) as refused:
        lifecycle.cancel_order(db, SUPPORT, number)
    assert "the order stays Paid" in str(refused.value)
    order = order_detail(db, number, actor=SYSTEM)
    assert order.status == "paid" and order.refunded_amount == 0
    assert [(r.status, r.failure_code) for r in order.refunds] == [("failed", "refund_failed")]
    assert order.events[-1].kind == "refund_failed"
    assert gateway_refunds(db, number) == []


def test_a_crash_right_after_the_gateway_refunded_never_refunds_twice(db, paid_order, monkeypatch):
    monkeypatch.setenv("ORDERS_PAYMENT_LEASE_SECONDS", "0")  # the dead process's lease is over
    crashing = CrashingGateway(Gateways(db).default, crash_after="refund")
    with pytest.raises(SimulatedCrash):
        lifecycle.cancel_order(db, SUPPORT, paid_order, gateways=Gateways(db).use(crashing))
    assert order_detail(db, paid_order, actor=SYSTEM).status == "paid"

    order = lifecycle.cancel_order(db, SUPPORT, paid_order)
    assert order.status == "canceled"
    assert order.refunded_amount == 1000
    assert gateway_refunds(db, paid_order) == [1000]
    assert [r.status for r in order.refunds] == ["succeeded"]
    assert status_changes(order).count(("cancel", "paid", "canceled")) == 1


@pytest.mark.parametrize("crash_after", ["list_refunds", "retrieve_payment", "refund"])
def test_a_crash_at_any_point_of_a_resumed_refund_never_refunds_twice(
    db, paid_order, monkeypatch, crash_after
):
    monkeypatch.setenv("ORDERS_PAYMENT_LEASE_SECONDS", "0")
    outage = FlakyGateway(Gateways(db).default, "refund", GatewayUnavailable("connection reset"))
    with pytest.raises(GatewayUnavailable):  # leaves the refund pending, to be resumed
        lifecycle.cancel_order(db, SUPPORT, paid_order, gateways=Gateways(db).use(outage))
    crashing = CrashingGateway(Gateways(db).default, crash_after=crash_after)
    with pytest.raises(SimulatedCrash):
        lifecycle.cancel_order(db, SUPPORT, paid_order, gateways=Gateways(db).use(crashing))
    assert crash_after in crashing.calls

    order = lifecycle.cancel_order(db, SUPPORT, paid_order)
    assert order.status == "canceled"
    assert order.refunded_amount == 1000
    assert gateway_refunds(db, paid_order) == [1000]
    assert [r.status for r in order.refunds] == ["succeeded"]
    assert status_changes(order).count(("cancel", "paid", "canceled")) == 1


def test_a_crash_between_the_gateway_answer_and_the_commit_is_resumed_with_the_same_key(
    db, paid_order, monkeypatch
):
    monkeypatch.setenv("ORDERS_PAYMENT_LEASE_SECONDS", "0")
    crashing = CrashingGateway(Gateways(db).default, crash_after="refund")
    with pytest.raises(SimulatedCrash):
        lifecycle.cancel_order(db, SUPPORT, paid_order, gateways=Gateways(db).use(crashing))
    with db.read() as conn:
        [pending] = conn.execute(select(refunds.c.status, refunds.c.idempotency_key)).all()
    assert pending.status == "pending"

    lifecycle.cancel_order(db, SUPPORT, paid_order)
    with db.read() as conn:
        [done] = conn.execute(select(refunds.c.status, refunds.c.idempotency_key)).all()
        [ledger] = conn.execute(select(sim_refunds.c.reference)).all()
    assert done == ("succeeded", pending.idempotency_key)
    assert ledger.reference == pending.idempotency_key


def test_a_refund_in_flight_elsewhere_blocks_other_moves_until_its_lease_ends(db, paid_order):
    crashing = CrashingGateway(Gateways(db).default, crash_after="refund")
    with pytest.raises(SimulatedCrash):  # the lease (60 s by default) is still held
        lifecycle.cancel_order(db, SUPPORT, paid_order, gateways=Gateways(db).use(crashing))
    before = row_counts(db)
    with pytest.raises(InProgress, match="in progress"):
        lifecycle.fulfill_order(db, OPS, paid_order)
    with pytest.raises(InProgress):
        lifecycle.cancel_order(db, SUPPORT, paid_order)
    assert row_counts(db) == before
    assert gateway_refunds(db, paid_order) == [1000]


def test_an_interrupted_cancel_must_be_finished_before_the_order_can_be_fulfilled(
    db, paid_order, monkeypatch
):
    monkeypatch.setenv("ORDERS_PAYMENT_LEASE_SECONDS", "0")
    crashing = CrashingGateway(Gateways(db).default, crash_after="refund")
    with pytest.raises(SimulatedCrash):
        lifecycle.cancel_order(db, SUPPORT, paid_order, gateways=Gateways(db).use(crashing))
    with pytest.raises(Exception, match="unfinished refund from an interrupted Cancel"):
        lifecycle.fulfill_order(db, OPS, paid_order)
    assert lifecycle.cancel_order(db, SUPPORT, paid_order).status == "canceled"


def test_a_gateway_outage_leaves_the_order_unchanged_and_a_retry_refunds_once(db, paid_order):
    flaky = FlakyGateway(Gateways(db).default, "refund", GatewayUnavailable("connection reset"))
    with pytest.raises(GatewayUnavailable, match="order is unchanged"):
        lifecycle.cancel_order(db, SUPPORT, paid_order, gateways=Gateways(db).use(flaky))
    assert order_detail(db, paid_order, actor=SYSTEM).status == "paid"
    assert lifecycle.cancel_order(db, SUPPORT, paid_order).status == "canceled"
    assert gateway_refunds(db, paid_order) == [1000]


def test_refunds_never_exceed_what_was_paid_even_if_the_gateway_already_refunded(db, paid_order):
    """A refund made outside Orders Desk (say in Stripe's dashboard) is not repeated."""
    from orders_core.payments.simulated import SimulatedGateway

    order = order_detail(db, paid_order, actor=SYSTEM)
    SimulatedGateway(db).refund(
        order.payment.gateway_payment_id, amount=1000, idempotency_key="outside", reference="outside"
    )
    with pytest.raises(RefundFailed, match="exceeds the 0 left to refund"):
        lifecycle.cancel_order(db, SUPPORT, paid_order)
    assert gateway_refunds(db, paid_order) == [1000]
    assert order_detail(db, paid_order, actor=SYSTEM).status == "paid"


def test_a_resumed_refund_checks_what_the_gateway_already_paid_back(db, paid_order, monkeypatch):
    """Resuming asks the gateway first; refunds made outside Orders Desk meanwhile stop it."""
    from orders_core.payments.simulated import SimulatedGateway

    monkeypatch.setenv("ORDERS_PAYMENT_LEASE_SECONDS", "0")
    outage = FlakyGateway(Gateways(db).default, "refund", GatewayUnavailable("connection reset"))
    with pytest.raises(GatewayUnavailable):
        lifecycle.cancel_order(db, SUPPORT, paid_order, gateways=Gateways(db).use(outage))
    order = order_detail(db, paid_order, actor=SYSTEM)
    SimulatedGateway(db).refund(
        order.payment.gateway_payment_id, amount=600, idempotency_key="outside", reference="outside"
    )
    with pytest.raises(RefundFailed, match="refusing to refund more than was paid"):
        lifecycle.cancel_order(db, SUPPORT, paid_order)
    assert gateway_refunds(db, paid_order) == [600]


def test_every_status_change_writes_exactly_one_event(db, customer):
    numbers = [place_order(db, customer, items=[("PASS-USD", 1)], token="tok_visa").number for _ in range(3)]
    lifecycle.fulfill_order(db, OPS, numbers[0])
    lifecycle.return_order(db, SUPPORT, numbers[0])
    lifecycle.cancel_order(db, SUPPORT, numbers[1])
    for number in numbers:
        order = order_detail(db, number, actor=SYSTEM)
        chain = [e for e in order.events if e.to_status]
        assert chain[-1].to_status == order.status
        assert all(a.to_status == b.from_status for a, b in zip(chain, chain[1:]))


def test_staff_notes_land_in_the_timeline_as_plain_text(db, paid_order):
    lifecycle.add_note(db, SUPPORT, paid_order, "<img src=x onerror=alert(1)> called the customer")
    note = order_detail(db, paid_order, actor=SYSTEM).events[-1]
    assert (note.kind, note.actor, note.note) == (
        "note",
        SUPPORT.email,
        "<img src=x onerror=alert(1)> called the customer",
    )
    with pytest.raises(PermissionDenied):
        lifecycle.add_note(db, ANALYST, paid_order, "hello")
