"""Promise 8: the Stripe path survives Stripe's failure modes; and promise 1 for the
Stripe gateway: a crash between Stripe's answer and our commit never refunds twice.

Everything runs against a real localstripe. The failures (409, 429 with Retry-After,
500, an answer later than the client's timeout, a connection reset) come from
tests/support/fault_proxy.FaultProxy, in front of localstripe; what Stripe really
holds is read straight from localstripe, bypassing the proxy.

localstripe ignores Idempotency-Key headers, so where a test needs Stripe's replay of
a completed request (the SDK's own retries), the proxy plays that part and says so
(`honor_idempotency_keys`). Where it does not, any protection comes from our own
pending refund row and the list of refunds we ask for before refunding.
"""

from __future__ import annotations

import dataclasses
import time

import pytest
import stripe
from sqlalchemy import select

from orders_core import jobs, lifecycle
from orders_core.checkout import pay_order, place_order
from orders_core.config import load_settings
from orders_core.errors import GatewayUnavailable, RefundFailed
from orders_core.job_engine import Worker
from orders_core.payments import Gateways
from orders_core.payments.stripe_gateway import StripeGateway
from orders_core.queries import order_detail
from orders_core.schema import refunds
from orders_core.staff import SYSTEM, Actor, Role
from tests.support.fakes import CrashingGateway, FlakyGateway, SimulatedCrash
from tests.support.fault_proxy import FaultProxy, gaps

pytestmark = pytest.mark.stripe

API_KEY = "sk_test_orders_desk"
SUPPORT = Actor("support@ordersdesk.test", Role.SUPPORT)
REFUNDS = r"^/v1/refunds$"
CONFIRM = r"^/v1/payment_intents/[^/]+/confirm$"
SDK_FIRST_BACKOFF = 0.5  # stripe-python's INITIAL_DELAY: never less between two attempts


@pytest.fixture
def stripe_client(localstripe_url) -> stripe.StripeClient:
    """Straight to localstripe: what Stripe really holds."""
    return stripe.StripeClient(API_KEY, base_addresses={"api": localstripe_url}, max_network_retries=0)


@pytest.fixture
def proxy(localstripe_url):
    with FaultProxy(localstripe_url) as running:
        yield running


@pytest.fixture(autouse=True)
def dead_leases_are_over(monkeypatch):
    monkeypatch.setenv("ORDERS_PAYMENT_LEASE_SECONDS", "0")  # a crashed process's lease is over


def stripe_gateways(db, base: str, *, retries: int = 0, timeout: float = 10.0) -> Gateways:
    settings = dataclasses.replace(
        load_settings(),
        gateway="stripe",
        stripe_api_key=API_KEY,
        stripe_api_base=base,
        stripe_max_network_retries=retries,
    )
    gateway = StripeGateway(
        API_KEY,
        api_base=base,
        max_network_retries=retries,
        http_client=stripe.RequestsClient(timeout=timeout),
    )
    return Gateways(db, settings).use(gateway)


def paid_on_stripe(shop, gateways, quantity: int = 2) -> str:
    order = place_order(
        shop.db, shop.customer, items=[("PASS-USD", quantity)], token="pm_card_visa", gateways=gateways
    )
    assert order.status == "paid"
    return order.number


def refunds_at_stripe(stripe_client, shop, number) -> list:
    payment_id = order_detail(shop.db, number, actor=SYSTEM).payment.gateway_payment_id
    return list(
        stripe_client.v1.refunds.list(params={"payment_intent": payment_id, "limit": 100}).auto_paging_iter()
    )


def intents_at_stripe(stripe_client) -> dict[str, object]:
    return {
        pi.id: pi for pi in stripe_client.v1.payment_intents.list(params={"limit": 100}).auto_paging_iter()
    }


def pending_refund_key(shop, number) -> str:
    with shop.db.read() as conn:
        [row] = conn.execute(select(refunds.c.idempotency_key, refunds.c.status)).all()
    assert row.status == "pending", row
    return row.idempotency_key


# -- a crash between Stripe's answer and our commit (promise 1, Stripe) ---------------------


@pytest.mark.parametrize("crash_after", ["list_refunds", "retrieve_payment", "refund"])
def test_a_crash_during_a_stripe_refund_is_resumed_and_stripe_refunds_once(
    sqlite_shop, localstripe_url, stripe_client, crash_after
):
    shop = sqlite_shop
    number = paid_on_stripe(shop, stripe_gateways(shop.db, localstripe_url))
    gateways = stripe_gateways(shop.db, localstripe_url)
    if crash_after != "refund":
        # A brand-new refund key goes straight to the refund; the look-ups happen when an
        # interrupted refund is resumed, so first leave one pending behind an outage.
        outage = Gateways(shop.db, gateways.settings).use(
            FlakyGateway(gateways.default, "refund", GatewayUnavailable("connection reset"))
        )
        with pytest.raises(GatewayUnavailable):
            lifecycle.cancel_order(shop.db, SUPPORT, number, gateways=outage)
    crashing = Gateways(shop.db, gateways.settings).use(
        CrashingGateway(gateways.default, crash_after=crash_after)
    )
    with pytest.raises(SimulatedCrash):
        lifecycle.cancel_order(shop.db, SUPPORT, number, gateways=crashing)
    key = pending_refund_key(shop, number)
    assert order_detail(shop.db, number, actor=SYSTEM).status == "paid"
    assert len(refunds_at_stripe(stripe_client, shop, number)) == (1 if crash_after == "refund" else 0)

    # The next process: localstripe ignores idempotency keys, so only our pending row and
    # the refunds we list first stand between this retry and a second refund.
    order = lifecycle.cancel_order(
        shop.db, SUPPORT, number, gateways=stripe_gateways(shop.db, localstripe_url)
    )
    assert (order.status, order.refunded_amount) == ("canceled", 1000)
    [refund] = refunds_at_stripe(stripe_client, shop, number)
    assert (refund.amount, refund.metadata["refund_key"]) == (1000, key)
    assert [r.gateway_refund_id for r in order.refunds] == [refund.id]


def test_a_crash_after_stripe_charged_the_card_is_settled_without_a_second_charge(
    sqlite_shop, localstripe_url, stripe_client
):
    shop = sqlite_shop
    before = set(intents_at_stripe(stripe_client))
    gateways = stripe_gateways(shop.db, localstripe_url)
    crashing = Gateways(shop.db, gateways.settings).use(
        CrashingGateway(gateways.default, crash_after="confirm_payment")
    )
    with pytest.raises(SimulatedCrash):
        place_order(shop.db, shop.customer, items=[("PASS-USD", 1)], token="pm_card_visa", gateways=crashing)
    order = pay_order(
        shop.db,
        shop.customer_actor,
        "ORD-000001",
        token="pm_card_visa",
        gateways=stripe_gateways(shop.db, localstripe_url),
    )
    assert order.status == "paid"
    new = [pi for pid, pi in intents_at_stripe(stripe_client).items() if pid not in before]
    assert [pi.status for pi in new] == ["succeeded"], "the card was charged more than once"
    assert order.payment.gateway_payment_id == new[0].id


# -- Stripe's failure modes on a single refund -------------------------------------------


@pytest.mark.parametrize("status", [409, 500])
def test_a_conflict_or_server_error_is_retried_by_the_sdk_with_backoff_and_the_same_key(
    sqlite_shop, proxy, stripe_client, status
):
    shop = sqlite_shop
    gateways = stripe_gateways(shop.db, proxy.url, retries=2)
    number = paid_on_stripe(shop, gateways)
    proxy.fail_next(1, "POST", REFUNDS, status=status)
    order = lifecycle.cancel_order(shop.db, SUPPORT, number, gateways=gateways)
    assert order.status == "canceled"
    attempts = proxy.requests("POST", REFUNDS)
    assert [a.outcome for a in attempts] == [f"fault status {status}", "forwarded 200"]
    assert len({a.idempotency_key for a in attempts}) == 1 and attempts[0].idempotency_key
    assert min(gaps(attempts)) >= SDK_FIRST_BACKOFF * 0.9
    assert len(refunds_at_stripe(stripe_client, shop, number)) == 1


def test_a_server_error_that_outlasts_the_sdk_retries_is_reported_and_a_later_retry_refunds_once(
    sqlite_shop, proxy, stripe_client
):
    shop = sqlite_shop
    gateways = stripe_gateways(shop.db, proxy.url, retries=2)
    number = paid_on_stripe(shop, gateways)
    proxy.fail_next(3, "POST", REFUNDS, status=500)
    with pytest.raises(GatewayUnavailable) as reported:
        lifecycle.cancel_order(shop.db, SUPPORT, number, gateways=gateways)
    assert "nothing was refunded twice and the order is unchanged" in str(reported.value)
    attempts = proxy.requests("POST", REFUNDS)
    assert len(attempts) == 3 and len({a.idempotency_key for a in attempts}) == 1
    assert all(gap >= SDK_FIRST_BACKOFF * 0.9 for gap in gaps(attempts)), list(gaps(attempts))
    assert order_detail(shop.db, number, actor=SYSTEM).status == "paid"
    assert refunds_at_stripe(stripe_client, shop, number) == []

    order = lifecycle.cancel_order(shop.db, SUPPORT, number, gateways=gateways)
    assert order.status == "canceled"
    assert len(refunds_at_stripe(stripe_client, shop, number)) == 1


def test_a_rate_limit_is_reported_with_stripes_retry_after_and_a_later_retry_refunds_once(
    sqlite_shop, proxy, stripe_client
):
    shop = sqlite_shop
    gateways = stripe_gateways(shop.db, proxy.url, retries=2)
    number = paid_on_stripe(shop, gateways)
    proxy.fail_next(1, "POST", REFUNDS, status=429, retry_after=7)
    with pytest.raises(GatewayUnavailable) as reported:
        lifecycle.cancel_order(shop.db, SUPPORT, number, gateways=gateways)
    assert reported.value.retry_after == 7 and reported.value.code == "rate_limit"
    assert "Try again" in str(reported.value)
    # stripe-python does not retry a 429 by itself: the wait is the caller's (the job
    # engine honours Retry-After in its backoff).
    assert len(proxy.requests("POST", REFUNDS)) == 1
    assert order_detail(shop.db, number, actor=SYSTEM).status == "paid"
    assert refunds_at_stripe(stripe_client, shop, number) == []

    assert lifecycle.cancel_order(shop.db, SUPPORT, number, gateways=gateways).status == "canceled"
    assert len(refunds_at_stripe(stripe_client, shop, number)) == 1


@pytest.mark.parametrize("fault", ["reset", "late answer"])
def test_a_refund_stripe_made_whose_answer_was_lost_is_adopted_not_repeated(
    sqlite_shop, localstripe_url, stripe_client, fault
):
    """The worst case for a refund: Stripe acted, we never heard. With a gateway that
    ignores idempotency keys (localstripe as it is, no SDK retries), the retry must find
    the refund by its key in Stripe's list instead of refunding again."""
    shop = sqlite_shop
    with FaultProxy(localstripe_url, honor_idempotency_keys=False) as bare:
        gateways = stripe_gateways(shop.db, bare.url, retries=0, timeout=0.5)
        number = paid_on_stripe(shop, gateways)
        if fault == "reset":
            bare.fail_next(1, "POST", REFUNDS, drop=True, after_forwarding=True)
        else:
            bare.fail_next(1, "POST", REFUNDS, delay=1.5, after_forwarding=True)
        with pytest.raises(GatewayUnavailable) as reported:
            lifecycle.cancel_order(shop.db, SUPPORT, number, gateways=gateways)
        assert reported.value.code == "api_connection_error"
        assert order_detail(shop.db, number, actor=SYSTEM).status == "paid"
        key = pending_refund_key(shop, number)
        [made] = refunds_at_stripe(stripe_client, shop, number)  # Stripe did refund
        assert made.metadata["refund_key"] == key

        order = lifecycle.cancel_order(shop.db, SUPPORT, number, gateways=gateways)
        assert order.status == "canceled"
        assert [r.id for r in refunds_at_stripe(stripe_client, shop, number)] == [made.id]
        assert len(bare.requests("POST", REFUNDS)) == 1  # listed, adopted, never re-sent


def test_the_sdks_retry_of_a_refund_whose_answer_was_lost_carries_the_same_key(
    sqlite_shop, proxy, stripe_client
):
    """With the SDK's retries on, the retry reaches Stripe with the first attempt's
    Idempotency-Key, so Stripe answers it from the first refund (played by the proxy)."""
    shop = sqlite_shop
    gateways = stripe_gateways(shop.db, proxy.url, retries=2, timeout=0.5)
    number = paid_on_stripe(shop, gateways)
    proxy.fail_next(1, "POST", REFUNDS, drop=True, after_forwarding=True)
    assert lifecycle.cancel_order(shop.db, SUPPORT, number, gateways=gateways).status == "canceled"
    attempts = proxy.requests("POST", REFUNDS)
    assert [a.outcome for a in attempts] == ["fault reset after forwarding", "replayed 200"]
    assert attempts[0].idempotency_key == attempts[1].idempotency_key
    assert min(gaps(attempts)) >= SDK_FIRST_BACKOFF * 0.9
    assert len(refunds_at_stripe(stripe_client, shop, number)) == 1


# -- Stripe's failure modes at checkout ----------------------------------------------------


def test_a_server_error_on_confirm_is_retried_by_the_sdk_and_the_card_is_charged_once(
    sqlite_shop, proxy, stripe_client
):
    shop = sqlite_shop
    before = set(intents_at_stripe(stripe_client))
    gateways = stripe_gateways(shop.db, proxy.url, retries=2)
    proxy.fail_next(1, "POST", CONFIRM, status=500)
    assert paid_on_stripe(shop, gateways, quantity=1)
    assert [a.outcome for a in proxy.requests("POST", CONFIRM)] == ["fault status 500", "forwarded 200"]
    new = [pi.status for pid, pi in intents_at_stripe(stripe_client).items() if pid not in before]
    assert new == ["succeeded"]


def test_a_rate_limited_checkout_is_reported_and_paying_later_charges_once(sqlite_shop, proxy, stripe_client):
    shop = sqlite_shop
    before = set(intents_at_stripe(stripe_client))
    gateways = stripe_gateways(shop.db, proxy.url, retries=2)
    proxy.fail_next(1, "POST", r"^/v1/payment_intents$", status=429, retry_after=3)
    with pytest.raises(GatewayUnavailable) as reported:
        place_order(shop.db, shop.customer, items=[("PASS-USD", 1)], token="pm_card_visa", gateways=gateways)
    assert reported.value.retry_after == 3 and "not charged" in str(reported.value)
    assert order_detail(shop.db, "ORD-000001", actor=SYSTEM).status == "created"
    order = pay_order(shop.db, shop.customer_actor, "ORD-000001", token="pm_card_visa", gateways=gateways)
    assert order.status == "paid"
    new = [pi.status for pid, pi in intents_at_stripe(stripe_client).items() if pid not in before]
    assert new == ["succeeded"]


def test_a_charge_stripe_made_whose_answer_was_lost_is_found_not_repeated(
    sqlite_shop, localstripe_url, stripe_client
):
    shop = sqlite_shop
    before = set(intents_at_stripe(stripe_client))
    with FaultProxy(localstripe_url, honor_idempotency_keys=False) as bare:
        gateways = stripe_gateways(shop.db, bare.url, retries=0, timeout=0.5)
        bare.fail_next(1, "POST", CONFIRM, drop=True, after_forwarding=True)
        with pytest.raises(GatewayUnavailable):
            place_order(
                shop.db, shop.customer, items=[("PASS-USD", 1)], token="pm_card_visa", gateways=gateways
            )
        assert order_detail(shop.db, "ORD-000001", actor=SYSTEM).status == "created"
        order = pay_order(shop.db, shop.customer_actor, "ORD-000001", token="pm_card_visa", gateways=gateways)
    assert order.status == "paid"
    new = [pi.status for pid, pi in intents_at_stripe(stripe_client).items() if pid not in before]
    assert new == ["succeeded"], "the card was charged more than once"
    assert len(bare.requests("POST", CONFIRM)) == 1


def test_a_lost_answer_to_a_charge_does_not_tell_the_customer_they_were_not_charged(
    sqlite_shop, localstripe_url
):
    shop = sqlite_shop
    with FaultProxy(localstripe_url, honor_idempotency_keys=False) as bare:
        gateways = stripe_gateways(shop.db, bare.url, retries=0, timeout=0.5)
        bare.fail_next(1, "POST", CONFIRM, drop=True, after_forwarding=True)
        with pytest.raises(GatewayUnavailable) as reported:
            place_order(
                shop.db, shop.customer, items=[("PASS-USD", 1)], token="pm_card_visa", gateways=gateways
            )
    assert "not charged" not in str(reported.value), str(reported.value)


# -- the bulk job engine through the same faults ---------------------------------------------


def run_job(shop, job_id: int, gateways, *, budget: float):
    Worker(
        shop.db, name="faults", gateways=gateways, settings=gateways.settings, retry_budget_seconds=budget
    ).run_once(job_id=job_id)
    jobs.finish_if_done(shop.db, job_id)
    return jobs.get_job(shop.db, job_id, actor=SYSTEM)


def test_a_bulk_cancel_retries_stripes_failures_with_backoff_and_refunds_each_order_once(
    sqlite_shop, proxy, stripe_client, debug_log
):
    shop = sqlite_shop
    gateways = stripe_gateways(shop.db, proxy.url, retries=0)
    numbers = [paid_on_stripe(shop, gateways, quantity=1) for _ in range(3)]
    proxy.fail_next(2, "POST", REFUNDS, status=500)
    proxy.fail_next(1, "POST", REFUNDS, status=429, retry_after=1)
    proxy.fail_next(1, "POST", REFUNDS, drop=True, after_forwarding=True)
    job = jobs.enqueue(shop.db, SUPPORT, "cancel", order_numbers=numbers)
    finished = run_job(shop, job.id, gateways, budget=30)
    assert (finished.status, finished.succeeded, finished.failed) == ("completed", 3, 0)
    for number in numbers:
        assert order_detail(shop.db, number, actor=SYSTEM).status == "canceled"
        assert len(refunds_at_stripe(stripe_client, shop, number)) == 1
    retries = [t for name, t in debug_log.texts if "failed transiently; retrying in" in t]
    delays = [float(t.rsplit("retrying in ", 1)[1].split(" s")[0]) for t in retries]
    # The worker backed off between rounds (0.25 s, 0.5 s, ...), and at least as long as
    # Stripe's Retry-After when it gave one.
    assert len(delays) >= 2 and min(delays) >= 0.25 and max(delays) >= 1.0, delays
    attempts = proxy.requests("POST", REFUNDS)
    # Three reached Stripe, one per order; the refund whose answer was reset was found in
    # Stripe's list on the next round, not sent again.
    assert sum(1 for a in attempts if a.upstream_status == 200) == 3
    assert len(attempts) == 3 + 3, [a.outcome for a in attempts]
    assert max(gaps(attempts)) >= 1.0


def test_a_bulk_cancel_reports_each_order_stripe_kept_refusing_and_moves_none_of_them(
    sqlite_shop, proxy, stripe_client
):
    shop = sqlite_shop
    gateways = stripe_gateways(shop.db, proxy.url, retries=0)
    numbers = [paid_on_stripe(shop, gateways, quantity=1) for _ in range(2)]
    proxy.fail_next(1000, "POST", REFUNDS, status=503)
    job = jobs.enqueue(shop.db, SUPPORT, "cancel", order_numbers=numbers)
    started = time.monotonic()
    finished = run_job(shop, job.id, gateways, budget=1.5)
    assert time.monotonic() - started < 20
    assert (finished.status, finished.succeeded, finished.failed) == ("failed", 0, 2)
    for failure in jobs.job_failures(shop.db, job.id, actor=SYSTEM):
        assert "unavailable" in failure["reason"] and "gave up after" in failure["reason"]
    assert len(proxy.requests("POST", REFUNDS)) >= 4  # retried, not given up at once
    for number in numbers:
        assert order_detail(shop.db, number, actor=SYSTEM).status == "paid"
        assert refunds_at_stripe(stripe_client, shop, number) == []

    # Stripe is back: retrying the failed orders refunds each exactly once.
    proxy.clear()
    retry = jobs.retry_failed(shop.db, Actor("ops@ordersdesk.test", Role.OPS), job.id)
    assert run_job(shop, retry.id, gateways, budget=30).status == "completed"
    for number in numbers:
        assert len(refunds_at_stripe(stripe_client, shop, number)) == 1


# -- Stripe's refusal of an over-refund ---------------------------------------------------

ALREADY_REFUNDED = {
    "type": "invalid_request_error",
    "code": "charge_already_refunded",
    "message": "Charge ch_123 has already been refunded.",
}


def test_stripes_refusal_of_an_over_refund_fails_the_cancel_and_moves_no_money(
    sqlite_shop, proxy, stripe_client
):
    """Someone refunded the charge in Stripe's dashboard, outside our books; Stripe then
    refuses our refund with 400 charge_already_refunded. localstripe does not enforce
    refund limits, so the proxy gives Stripe's answer instead of forwarding."""
    shop = sqlite_shop
    gateways = stripe_gateways(shop.db, proxy.url, retries=2)
    number = paid_on_stripe(shop, gateways)
    before = order_detail(shop.db, number, actor=SYSTEM)
    proxy.fail_next(1, "POST", REFUNDS, status=400, error=ALREADY_REFUNDED)

    with pytest.raises(RefundFailed) as refused:
        lifecycle.cancel_order(shop.db, SUPPORT, number, gateways=gateways)

    assert refused.value.code == "charge_already_refunded"
    assert f"order {number} failed" in str(refused.value) and "stays Paid" in str(refused.value)
    assert len(proxy.requests("POST", REFUNDS)) == 1  # a refusal is not retried
    after = order_detail(shop.db, number, actor=SYSTEM)
    assert (after.status, after.refunded_amount) == ("paid", before.refunded_amount)
    assert [(r.status, r.amount) for r in after.refunds] == [("failed", 1000)]
    assert after.events[-1].kind == "refund_failed"
    assert refunds_at_stripe(stripe_client, shop, number) == []


# -- a charge slower than the payment lease ------------------------------------------------


def test_a_charge_slower_than_its_lease_is_not_charged_twice(
    sqlite_shop, localstripe_url, stripe_client, monkeypatch
):
    import threading

    monkeypatch.setenv("ORDERS_PAYMENT_LEASE_SECONDS", "1")
    shop = sqlite_shop
    before = set(intents_at_stripe(stripe_client))
    with FaultProxy(localstripe_url) as slow:
        slow.fail_next(1, "POST", CONFIRM, delay=3.0)  # reaches Stripe, 3 s late
        first: dict = {}

        def checkout():
            try:
                first["order"] = place_order(
                    shop.db,
                    shop.customer,
                    items=[("PASS-USD", 1)],
                    token="pm_card_visa",
                    gateways=stripe_gateways(shop.db, slow.url, timeout=10),
                )
            except Exception as error:  # noqa: BLE001 - reported below
                first["error"] = error

        thread = threading.Thread(target=checkout)
        thread.start()
        time.sleep(1.8)  # the first attempt's lease is over; its confirm is still on its way
        pay_order(
            shop.db,
            shop.customer_actor,
            "ORD-000001",
            token="pm_card_visa",
            gateways=stripe_gateways(shop.db, localstripe_url),
        )
        thread.join(30)
    succeeded = [
        pi.id
        for pid, pi in intents_at_stripe(stripe_client).items()
        if pid not in before and pi.status == "succeeded"
    ]
    assert len(succeeded) == 1, f"the card was charged {len(succeeded)} times"
