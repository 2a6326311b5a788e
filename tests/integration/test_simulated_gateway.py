"""The simulated gateway keeps Stripe's idempotency promises on both databases: on
PostgreSQL its common answers are one statement each (the ledger's change and the key
commit together), everything else the transaction behind it; both must answer alike."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from orders_core.errors import CardDeclined, PaymentError, RefundFailed
from orders_core.payments.simulated import SimulatedGateway
from orders_core.schema import sim_charges, sim_idempotency_keys, sim_refunds


def _count(db, table, *where) -> int:
    with db.read() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def _paid_charge(gateway, *, token="tok_visa", amount=1000, key="order-1") -> str:
    created = gateway.create_payment(amount=amount, currency="usd", reference="ORD-1", idempotency_key=key)
    charge = gateway.confirm_payment(created.payment_id, token=token, idempotency_key=f"{key}:confirm")
    assert charge.succeeded
    return created.payment_id


def test_a_repeated_create_confirm_and_refund_replay_their_first_answers(db):
    gateway = SimulatedGateway(db)
    first = gateway.create_payment(amount=1000, currency="usd", reference="ORD-1", idempotency_key="k")
    again = gateway.create_payment(amount=1000, currency="usd", reference="ORD-1", idempotency_key="k")
    assert again == first
    assert _count(db, sim_charges) == 1
    confirmed = gateway.confirm_payment(first.payment_id, token="tok_visa", idempotency_key="k:confirm")
    assert (
        gateway.confirm_payment(first.payment_id, token="tok_visa", idempotency_key="k:confirm") == confirmed
    )
    assert (confirmed.status, confirmed.amount, confirmed.currency) == ("succeeded", 1000, "usd")
    refund = gateway.refund(first.payment_id, amount=400, idempotency_key="r1", reference="r1")
    assert gateway.refund(first.payment_id, amount=400, idempotency_key="r1", reference="r1") == refund
    assert (refund.amount, refund.currency, refund.status, refund.reference) == (
        400,
        "usd",
        "succeeded",
        "r1",
    )
    assert _count(db, sim_refunds) == 1
    assert gateway.list_refunds(first.payment_id) == [refund]


def test_a_key_reused_for_another_request_is_refused_and_changes_nothing(db):
    gateway = SimulatedGateway(db)
    payment_id = _paid_charge(gateway)
    gateway.refund(payment_id, amount=300, idempotency_key="r1", reference="r1")
    with pytest.raises(PaymentError) as refused:
        gateway.refund(payment_id, amount=500, idempotency_key="r1", reference="r1")
    assert refused.value.code == "idempotency_key_in_use"
    with pytest.raises(PaymentError) as reused:
        gateway.create_payment(amount=1, currency="usd", reference="ORD-2", idempotency_key="order-1")
    assert reused.value.code == "idempotency_key_in_use"
    assert [r.amount for r in gateway.list_refunds(payment_id)] == [300]
    assert _count(db, sim_charges) == 1


def test_a_declined_confirm_is_stored_and_replayed_as_the_same_decline(db):
    gateway = SimulatedGateway(db)
    created = gateway.create_payment(amount=1000, currency="usd", reference="ORD-1", idempotency_key="k")
    for _ in range(2):
        with pytest.raises(CardDeclined) as declined:
            gateway.confirm_payment(created.payment_id, token="tok_chargeDeclined", idempotency_key="k:c")
        assert declined.value.code == "generic_decline"
    assert gateway.retrieve_payment(created.payment_id).status == "requires_payment_method"
    assert _count(db, sim_idempotency_keys, sim_idempotency_keys.c.key == "k:c") == 1
    # a new key with a good card charges it
    assert gateway.confirm_payment(created.payment_id, token="tok_visa", idempotency_key="k:c2").succeeded


def test_refunds_never_exceed_the_charge_and_each_refusal_says_why(db):
    gateway = SimulatedGateway(db)
    payment_id = _paid_charge(gateway)
    gateway.refund(payment_id, amount=700, idempotency_key="r1", reference="r1")
    with pytest.raises(RefundFailed) as too_large:
        gateway.refund(payment_id, amount=301, idempotency_key="r2", reference="r2")
    assert too_large.value.code == "amount_too_large"
    gateway.refund(payment_id, amount=300, idempotency_key="r3", reference="r3")
    with pytest.raises(RefundFailed) as nothing_left:
        gateway.refund(payment_id, amount=1, idempotency_key="r4", reference="r4")
    assert nothing_left.value.code == "charge_already_refunded"
    with pytest.raises(RefundFailed):  # a refusal is replayed under its key, never retried
        gateway.refund(payment_id, amount=301, idempotency_key="r2", reference="r2")
    assert sorted(r.amount for r in gateway.list_refunds(payment_id)) == [300, 700]


def test_a_card_that_refuses_refunds_and_an_unconfirmed_charge_refund_nothing(db):
    gateway = SimulatedGateway(db)
    refusing = _paid_charge(gateway, token="tok_refundFail")
    with pytest.raises(RefundFailed) as refused:
        gateway.refund(refusing, amount=100, idempotency_key="r1", reference="r1")
    assert refused.value.code == "refund_failed"
    created = gateway.create_payment(amount=500, currency="usd", reference="ORD-2", idempotency_key="k2")
    with pytest.raises(RefundFailed) as unpaid:
        gateway.refund(created.payment_id, amount=100, idempotency_key="r2", reference="r2")
    assert unpaid.value.code == "charge_not_succeeded"
    assert _count(db, sim_refunds) == 0


def test_cancelling_a_succeeded_charge_leaves_it_succeeded_and_a_canceled_one_cannot_be_confirmed(db):
    gateway = SimulatedGateway(db)
    paid = _paid_charge(gateway)
    assert gateway.cancel_payment(paid).status == "succeeded"
    created = gateway.create_payment(amount=500, currency="usd", reference="ORD-2", idempotency_key="k2")
    assert gateway.cancel_payment(created.payment_id).status == "canceled"
    with pytest.raises(PaymentError) as refused:
        gateway.confirm_payment(created.payment_id, token="tok_visa", idempotency_key="k2:confirm")
    assert refused.value.code == "payment_intent_unexpected_state"
    assert gateway.retrieve_payment(created.payment_id).status == "canceled"
