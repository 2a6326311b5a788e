"""What each Stripe event does, on SQLite and PostgreSQL: events are stored in the
inbox exactly as the webhook route stores them (`receive_event`, after the signature
was verified) and applied by the worker's pass (`process_pending_events`); the
database is checked after each. The HTTP side (signatures, sizes) is in
tests/e2e/test_webhook_route.py."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update

from orders_core import checkout, jobs, lifecycle
from orders_core.checkout import place_order
from orders_core.errors import CardDeclined, RefundFailed, ValidationError
from orders_core.job_engine import run_job_here
from orders_core.payment_events import clear_attention, list_stripe_events, read_payment_events
from orders_core.payments import Gateways
from orders_core.queries import OrderFilters, list_orders, order_detail
from orders_core.schema import disputes, orders, payments, refunds, sim_refunds, stripe_events
from orders_core.staff import SYSTEM, Actor, Role
from orders_core.stripe_events import process_pending_events, receive_event
from orders_core.stripe_events import simulated as simulated_gateway
from tests.support import stripe_events as stripe
from tests.support.fakes import CrashingGateway, SimulatedCrash

OPS = Actor("ops@ordersdesk.test", Role.OPS)
SUPPORT = Actor("support@ordersdesk.test", Role.SUPPORT)


@pytest.fixture
def paid_order(customer, db):
    return place_order(db, customer, items=[("PASS-USD", 2)], token="tok_visa").number


def payment_intent_of(db, number: str) -> str:
    with db.read() as conn:
        return conn.execute(
            select(payments.c.gateway_payment_id)
            .join(orders, orders.c.id == payments.c.order_id)
            .where(orders.c.number == number)
            .order_by(payments.c.id.desc())
        ).scalar()


def deliver(db, evt: dict) -> dict:
    """Store the event as the route does, let the worker apply it, return its inbox row."""
    receive_event(db, evt)
    process_pending_events(db)
    with db.read() as conn:
        row = conn.execute(select(stripe_events).where(stripe_events.c.event_id == evt["id"])).one()
    return row._asdict()


def events_of(db, number: str, action: str) -> list[str]:
    return [e.note for e in order_detail(db, number, actor=SYSTEM).events if e.kind == action]


def gateway_refund_amounts(db, pi_id: str) -> list[int]:
    with db.read() as conn:
        return list(
            conn.execute(select(sim_refunds.c.amount).where(sim_refunds.c.charge_id == pi_id)).scalars()
        )


# -- payment_intent.* -------------------------------------------------------------------------
def test_payment_succeeded_for_an_order_whose_confirm_answer_was_lost_pays_it_once(customer, db, monkeypatch):
    monkeypatch.setenv("ORDERS_PAYMENT_LEASE_SECONDS", "0")  # the process that charged is gone
    crashing = CrashingGateway(Gateways(db).default, crash_after="confirm_payment")
    with pytest.raises(SimulatedCrash):
        place_order(
            db, customer, items=[("PASS-USD", 1)], token="tok_visa", gateways=Gateways(db).use(crashing)
        )
    number = "ORD-000001"
    assert order_detail(db, number, actor=SYSTEM).status == "created"
    pi_id = payment_intent_of(db, number)

    first = stripe.event("payment_intent.succeeded", stripe.payment_intent(pi_id, amount=500))
    row = deliver(db, first)
    assert (row["outcome"], row["order_id"]) == ("applied", 1)
    order = order_detail(db, number, actor=SYSTEM)
    assert order.status == "paid"
    assert [p.status for p in order.payment_attempts] == ["succeeded"]

    # Stripe sends it again (a retry), and then a second event about the same payment.
    assert receive_event(db, first).new is False
    again = deliver(db, stripe.event("payment_intent.succeeded", stripe.payment_intent(pi_id, amount=500)))
    assert again["outcome"] == "no_change"
    order = order_detail(db, number, actor=SYSTEM)
    assert [(e.kind, e.to_status) for e in order.events].count(("pay", "paid")) == 1
    with db.read() as conn:
        assert conn.execute(select(func.count()).select_from(stripe_events)).scalar_one() == 2


def test_payment_succeeded_while_the_charge_is_still_in_flight_waits_for_it(customer, db):
    crashing = CrashingGateway(Gateways(db).default, crash_after="confirm_payment")
    with pytest.raises(SimulatedCrash):
        place_order(
            db, customer, items=[("PASS-USD", 1)], token="tok_visa", gateways=Gateways(db).use(crashing)
        )
    pi_id = payment_intent_of(db, "ORD-000001")
    row = deliver(db, stripe.event("payment_intent.succeeded", stripe.payment_intent(pi_id, amount=500)))
    assert row["outcome"] == "deferred" and row["processed_at"] is None and row["retry_at"] is not None
    assert order_detail(db, "ORD-000001", actor=SYSTEM).status == "created"

    with db.write() as conn:  # the charging process's lease runs out, and so does the wait
        conn.execute(update(payments).values(locked_until=None))
        conn.execute(update(stripe_events).values(retry_at=None))
    process_pending_events(db)
    assert order_detail(db, "ORD-000001", actor=SYSTEM).status == "paid"


def test_payment_succeeded_for_an_order_already_paid_changes_nothing(db, paid_order):
    before = order_detail(db, paid_order, actor=SYSTEM)
    row = deliver(
        db, stripe.event("payment_intent.succeeded", stripe.payment_intent(payment_intent_of(db, paid_order)))
    )
    assert row["outcome"] == "no_change"
    assert order_detail(db, paid_order, actor=SYSTEM) == before


def test_payment_failed_is_written_in_the_timeline_with_its_decline_code(customer, db):
    with pytest.raises(CardDeclined):
        place_order(db, customer, items=[("PASS-USD", 1)], token="tok_chargeDeclinedInsufficientFunds")
    pi_id = payment_intent_of(db, "ORD-000001")
    row = deliver(
        db,
        stripe.event(
            "payment_intent.payment_failed", stripe.payment_intent(pi_id, decline_code="insufficient_funds")
        ),
    )
    assert row["outcome"] == "applied"
    [note] = [n for n in events_of(db, "ORD-000001", "payment_failed") if "Stripe reports" in n]
    assert "decline code insufficient_funds" in note
    assert order_detail(db, "ORD-000001", actor=SYSTEM).status == "created"


# -- refunds ----------------------------------------------------------------------------------
def test_a_refund_made_in_the_dashboard_is_recorded_flagged_and_cancel_adopts_it(db, paid_order):
    pi_id = payment_intent_of(db, paid_order)
    # A finance colleague refunds the whole charge in the Dashboard (the simulated one).
    delivered = simulated_gateway.refund_outside(db, paid_order)
    process_pending_events(db)

    order = order_detail(db, paid_order, actor=SYSTEM)
    assert order.status == "paid" and order.refunded_amount == order.total_amount == 1000
    with db.read() as conn:
        [row] = conn.execute(select(refunds).where(refunds.c.order_id == 1)).all()
    assert (row.origin, row.gateway_refund_id, row.amount, row.status) == (
        "external",
        delivered.object_id,
        1000,
        "succeeded",
    )
    [note] = events_of(db, paid_order, "external_refund")
    assert delivered.object_id in note and "$10.00" in note
    facts = read_payment_events(db, paid_order, actor=SYSTEM)
    assert facts.needs_attention and delivered.object_id in (facts.attention_reason or "")
    assert [r.gateway_refund_id for r in facts.external_refunds] == [delivered.object_id]
    flagged = list_orders(db, OrderFilters.parse(needs_attention=True), actor=SYSTEM)
    assert [r["number"] for r in flagged.rows] == [paid_order] and flagged.total == 1

    # Cancel moves the order and sends no second refund: the one that exists is adopted.
    canceled = lifecycle.cancel_order(db, SUPPORT, paid_order, reason="Refunded in the Dashboard")
    assert canceled.status == "canceled" and canceled.refunded_amount == 1000
    assert gateway_refund_amounts(db, pi_id) == [1000]
    assert [r.action for r in canceled.refunds] == ["external"]


def test_after_a_partial_refund_outside_a_return_refunds_only_the_rest(db, paid_order):
    pi_id = payment_intent_of(db, paid_order)
    simulated_gateway.refund_outside(db, paid_order, amount=300)
    process_pending_events(db)
    lifecycle.fulfill_order(db, OPS, paid_order)
    returned = lifecycle.return_order(db, SUPPORT, paid_order)
    assert returned.status == "returned" and returned.refunded_amount == 1000
    assert sorted(gateway_refund_amounts(db, pi_id)) == [300, 700]


def test_our_own_refund_reported_back_changes_nothing(db, paid_order):
    canceled = lifecycle.cancel_order(db, SUPPORT, paid_order)
    [ours] = canceled.refunds
    with db.read() as conn:
        key = conn.execute(select(refunds.c.idempotency_key)).scalar_one()
    for kind in ("refund.created", "refund.updated"):
        obj = stripe.refund(ours.gateway_refund_id, payment_intent_of(db, paid_order), amount=1000, key=key)
        assert deliver(db, stripe.event(kind, obj))["outcome"] == "no_change"
    after = order_detail(db, paid_order, actor=SYSTEM)
    assert after.refunded_amount == 1000 and len(after.refunds) == 1
    assert not read_payment_events(db, paid_order, actor=SYSTEM).needs_attention


def test_an_older_refund_event_after_a_newer_one_changes_nothing(db, paid_order):
    pi_id = payment_intent_of(db, paid_order)
    newer = stripe.event(
        "refund.updated", stripe.refund("re_ext_1", pi_id, amount=400, status="failed"), created=2_000_000_000
    )
    older = stripe.event(
        "refund.created",
        stripe.refund("re_ext_1", pi_id, amount=400, status="succeeded"),
        created=1_999_999_000,
    )
    assert deliver(db, newer)["outcome"] == "applied"
    assert deliver(db, older)["outcome"] == "stale"
    order = order_detail(db, paid_order, actor=SYSTEM)
    assert order.refunded_amount == 0  # a failed refund gives nothing back
    assert [r.status for r in order.refunds] == ["failed"]


def test_an_external_refund_that_fails_later_is_taken_off_the_refunded_amount(db, paid_order):
    pi_id = payment_intent_of(db, paid_order)
    deliver(
        db,
        stripe.event("refund.created", stripe.refund("re_ext_2", pi_id, amount=400), created=1_900_000_000),
    )
    assert order_detail(db, paid_order, actor=SYSTEM).refunded_amount == 400
    deliver(
        db,
        stripe.event(
            "refund.updated",
            stripe.refund("re_ext_2", pi_id, amount=400, status="failed"),
            created=1_900_000_100,
        ),
    )
    assert order_detail(db, paid_order, actor=SYSTEM).refunded_amount == 0


def test_charge_refunded_lists_its_refunds_and_each_is_recorded_once(db, paid_order):
    pi_id = payment_intent_of(db, paid_order)
    charge = {
        "id": "ch_1",
        "object": "charge",
        "payment_intent": pi_id,
        "amount_refunded": 250,
        "refunds": {"data": [stripe.refund("re_ext_3", pi_id, amount=250)]},
    }
    assert deliver(db, stripe.event("charge.refunded", charge))["outcome"] == "applied"
    assert (
        deliver(db, stripe.event("refund.created", stripe.refund("re_ext_3", pi_id, amount=250)))["outcome"]
        == "no_change"
    )
    assert order_detail(db, paid_order, actor=SYSTEM).refunded_amount == 250


# -- disputes ---------------------------------------------------------------------------------
def test_a_dispute_marks_the_order_disputed_and_fulfilling_it_needs_a_confirmation(db, paid_order):
    delivered = simulated_gateway.open_dispute(db, paid_order, reason="fraudulent")
    process_pending_events(db)
    facts = read_payment_events(db, paid_order, actor=SYSTEM)
    assert facts.disputed
    [found] = facts.disputes
    assert (found.gateway_dispute_id, found.reason, found.amount, found.status) == (
        delivered.object_id,
        "fraudulent",
        1000,
        "needs_response",
    )
    assert found.evidence_due_by is not None
    assert [r["number"] for r in list_orders(db, OrderFilters.parse(disputed=True), actor=SYSTEM).rows] == [
        paid_order
    ]
    assert any(delivered.object_id in n for n in events_of(db, paid_order, "dispute"))

    with pytest.raises(ValidationError, match=delivered.object_id):
        lifecycle.fulfill_order(db, OPS, paid_order)
    assert order_detail(db, paid_order, actor=SYSTEM).status == "paid"
    assert lifecycle.fulfill_order(db, OPS, paid_order, confirm_disputed=True).status == "fulfilled"


def test_bulk_fulfil_skips_a_disputed_order_with_its_reason(db, customer, paid_order):
    other = place_order(db, customer, items=[("PASS-USD", 1)], token="tok_visa").number
    simulated_gateway.open_dispute(db, paid_order)
    process_pending_events(db)
    preflight = jobs.preflight(db, OPS, "fulfill", order_numbers=[paid_order, other])
    assert (preflight.eligible, preflight.ineligible) == (1, {jobs.DISPUTED_REASON: 1})
    by_filter = jobs.preflight(db, OPS, "fulfill", filters=OrderFilters.parse(status="paid", disputed=True))
    assert (by_filter.eligible, by_filter.ineligible) == (0, {jobs.DISPUTED_REASON: 1})
    job = jobs.enqueue(db, OPS, "fulfill", order_numbers=[paid_order, other])
    done = run_job_here(db, job.id)
    assert (done.succeeded, done.failed) == (1, 1)
    [failure] = jobs.job_failures(db, job.id, actor=OPS)
    assert failure["order"] == paid_order and "disputed" in failure["reason"]


def test_a_dispute_won_no_longer_marks_the_order_and_an_older_update_cannot_reopen_it(db, paid_order):
    pi_id = payment_intent_of(db, paid_order)
    opened = stripe.event(
        "charge.dispute.created", stripe.dispute("dp_1", pi_id, amount=1000), created=1_900_000_000
    )
    closed = stripe.event(
        "charge.dispute.closed",
        stripe.dispute("dp_1", pi_id, amount=1000, status="won"),
        created=1_900_000_200,
    )
    late = stripe.event(
        "charge.dispute.updated",
        stripe.dispute("dp_1", pi_id, amount=1000, status="under_review"),
        created=1_900_000_100,
    )
    assert [deliver(db, e)["outcome"] for e in (opened, closed, late)] == ["applied", "applied", "stale"]
    with db.read() as conn:
        assert conn.execute(select(disputes.c.status)).scalars().all() == ["won"]
    assert not read_payment_events(db, paid_order, actor=SYSTEM).disputed
    assert list_orders(db, OrderFilters.parse(disputed=True), actor=SYSTEM).total == 0


# -- unmatched and the inbox ------------------------------------------------------------------
def test_an_event_for_a_payment_we_do_not_know_is_kept_as_unmatched(db, paid_order):
    before = order_detail(db, paid_order, actor=SYSTEM)
    row = deliver(
        db, stripe.event("charge.dispute.created", stripe.dispute("dp_x", "pi_unknown", amount=700))
    )
    assert (row["outcome"], row["order_id"]) == ("unmatched", None)
    [listed] = list_stripe_events(db, actor=SYSTEM, unmatched=True)
    assert (listed.event_id, listed.order_number) == (row["event_id"], None)
    assert order_detail(db, paid_order, actor=SYSTEM) == before


def test_an_event_of_a_type_we_do_not_act_on_is_kept_as_ignored(db):
    row = deliver(db, stripe.event("customer.created", {"id": "cus_1", "object": "customer"}))
    assert row["outcome"] == "ignored" and row["processed_at"] is not None


def test_a_duplicate_event_is_stored_once(db):
    evt = stripe.event("customer.created", {"id": "cus_1", "object": "customer"})
    first, second = receive_event(db, evt), receive_event(db, evt)
    assert (first.new, second.new, first.id) == (True, False, second.id)
    with db.read() as conn:
        assert conn.execute(select(func.count()).select_from(stripe_events)).scalar_one() == 1


def test_clearing_the_attention_flag_says_who_did_it(db, paid_order):
    simulated_gateway.refund_outside(db, paid_order, amount=100)
    process_pending_events(db)
    clear_attention(db, SUPPORT, paid_order, note="Finance confirmed")
    assert not read_payment_events(db, paid_order, actor=SYSTEM).needs_attention
    [note] = [n for n in events_of(db, paid_order, "attention")]
    assert "Finance confirmed" in note
    with pytest.raises(ValidationError):
        clear_attention(db, SUPPORT, paid_order)


def test_pay_after_a_lost_answer_and_its_webhook_agree(customer, db, monkeypatch):
    """The webhook and a person's retry of Pay race for the same pending charge: one Paid."""
    monkeypatch.setenv("ORDERS_PAYMENT_LEASE_SECONDS", "0")
    crashing = CrashingGateway(Gateways(db).default, crash_after="confirm_payment")
    with pytest.raises(SimulatedCrash):
        place_order(
            db, customer, items=[("PASS-USD", 1)], token="tok_visa", gateways=Gateways(db).use(crashing)
        )
    pi_id = payment_intent_of(db, "ORD-000001")
    checkout.pay_order(db, SYSTEM, "ORD-000001", token="tok_visa")
    assert (
        deliver(db, stripe.event("payment_intent.succeeded", stripe.payment_intent(pi_id)))["outcome"]
        == "no_change"
    )
    pays = [e for e in order_detail(db, "ORD-000001", actor=SYSTEM).events if e.to_status == "paid"]
    assert len(pays) == 1


def test_a_cancel_before_the_dashboard_refunds_webhook_arrives_refunds_nothing_twice(db, paid_order):
    """The refund outside has happened at the gateway but its event is still on its way:
    the gateway refuses a second full refund, the order stays Paid; once the event is
    applied, Cancel adopts the refund."""
    pi_id = payment_intent_of(db, paid_order)
    simulated_gateway.refund_outside(db, paid_order)  # delivered, not yet applied
    with pytest.raises(RefundFailed):
        lifecycle.cancel_order(db, SUPPORT, paid_order)
    assert order_detail(db, paid_order, actor=SYSTEM).status == "paid"
    assert gateway_refund_amounts(db, pi_id) == [1000]

    process_pending_events(db)
    assert lifecycle.cancel_order(db, SUPPORT, paid_order).status == "canceled"
    assert gateway_refund_amounts(db, pi_id) == [1000]


@pytest.mark.stripe
def test_on_localstripe_a_refund_made_outside_is_adopted_by_cancel(
    db, customer, localstripe_url, monkeypatch
):
    import stripe as stripe_sdk

    key = "sk_test_localstripe"
    for name, value in {
        "ORDERS_PAYMENT_GATEWAY": "stripe",
        "STRIPE_API_KEY": key,
        "STRIPE_API_BASE": localstripe_url,
        "STRIPE_MAX_NETWORK_RETRIES": "0",
    }.items():
        monkeypatch.setenv(name, value)
    number = place_order(db, customer, items=[("PASS-USD", 2)], token="pm_card_visa").number
    pi_id = payment_intent_of(db, number)
    dashboard = stripe_sdk.StripeClient(key, base_addresses={"api": localstripe_url})
    made = dashboard.v1.refunds.create(params={"payment_intent": pi_id, "amount": 1000})
    obj = made.to_dict()
    obj.setdefault("payment_intent", pi_id)
    assert deliver(db, stripe.event("refund.created", obj))["outcome"] == "applied"

    canceled = lifecycle.cancel_order(db, SUPPORT, number)
    assert canceled.status == "canceled" and canceled.refunded_amount == 1000
    at_gateway = list(dashboard.v1.refunds.list(params={"payment_intent": pi_id}).auto_paging_iter())
    assert [r.id for r in at_gateway] == [made.id]


def test_the_job_workers_loop_applies_the_inbox(db, paid_order):
    from orders_core.job_engine.worker import Worker

    evt = stripe.event(
        "charge.dispute.created", stripe.dispute("dp_w", payment_intent_of(db, paid_order), amount=1000)
    )
    receive_event(db, evt)
    worker = Worker(db, name="test-worker")
    try:
        assert worker.run_once() == 1
    finally:
        worker.close()
    assert read_payment_events(db, paid_order, actor=SYSTEM).disputed


def test_an_event_whose_effect_fails_is_retried_then_closed_as_failed_with_its_error(db, paid_order):
    from orders_core.stripe_events.inbox import MAX_ATTEMPTS

    broken = stripe.refund("re_broken", payment_intent_of(db, paid_order), amount=100)
    broken["amount"] = "a lot"  # nothing we can count
    evt = stripe.event("refund.created", broken)
    receive_event(db, evt)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        process_pending_events(db)
        with db.read() as conn:
            row = conn.execute(select(stripe_events).where(stripe_events.c.event_id == evt["id"])).one()
        assert row.attempts == attempt and "ValueError" in row.error
        if attempt < MAX_ATTEMPTS:
            assert (row.outcome, row.processed_at) == ("deferred", None)
            with db.write() as conn:  # its retry time has come
                conn.execute(update(stripe_events).values(retry_at=None))
    assert row.outcome == "failed" and row.processed_at is not None
    assert order_detail(db, paid_order, actor=SYSTEM).refunded_amount == 0
