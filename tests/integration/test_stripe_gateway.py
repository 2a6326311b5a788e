"""StripeGateway against a real localstripe (tests/support/localstripe.py), plus a
few canned HTTP answers that localstripe cannot give (429, 409, 503).

localstripe is a fake: where it does not do what Stripe does, the test says so
(xfail with the reason) instead of pretending.
"""

from __future__ import annotations

import dataclasses
import http.server
import json
import threading
import uuid
from collections.abc import Iterator

import pytest
import stripe

from orders_core.config import load_settings
from orders_core.errors import (
    CardDeclined,
    GatewayUnavailable,
    InvalidToken,
    OrdersError,
    PaymentError,
    RefundFailed,
)
from orders_core.payments.base import Charge, GatewayRefund
from orders_core.payments.stripe_gateway import StripeGateway

pytestmark = pytest.mark.stripe

API_KEY = "sk_test_orders_desk"


def new_key() -> str:
    return f"test-{uuid.uuid4()}"


@pytest.fixture
def gateway(localstripe_url: str) -> StripeGateway:
    return StripeGateway(API_KEY, api_base=localstripe_url, max_network_retries=0)


@pytest.fixture
def raw_client(localstripe_url: str) -> stripe.StripeClient:
    """Stripe's SDK on the same server, to look behind the gateway's back."""
    return stripe.StripeClient(API_KEY, base_addresses={"api": localstripe_url})


def paid(gateway: StripeGateway, amount: int = 1000, currency: str = "eur") -> Charge:
    charge = gateway.create_payment(
        amount=amount, currency=currency, reference=f"order-{uuid.uuid4().hex[:8]}", idempotency_key=new_key()
    )
    charge = gateway.confirm_payment(charge.payment_id, token="pm_card_visa", idempotency_key=new_key())
    assert charge.succeeded
    return charge


def refund(gateway: StripeGateway, payment_id: str, amount: int) -> GatewayRefund:
    reference = new_key()
    return gateway.refund(payment_id, amount=amount, idempotency_key=reference, reference=reference)


def chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and every cause or context it carries."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def assert_not_leaked(exc: BaseException, *secrets: str) -> None:
    shown = [str(exc), repr(exc)]
    if not exc.__suppress_context__ or exc.__cause__ is not None:
        shown += [f"{e!s} {e!r}" for e in chain(exc)]
    for secret in secrets:
        assert not any(secret in text for text in shown), f"{secret!r} leaked into {shown!r}"


# -- charging -------------------------------------------------------------------


def test_a_visa_payment_is_created_without_a_card_then_confirmed_and_retrieval_agrees(gateway, raw_client):
    created = gateway.create_payment(
        amount=1250, currency="EUR", reference="order-41", idempotency_key=new_key()
    )
    assert created.payment_id.startswith("pi_")
    # Stripe (and localstripe): an intent created without a card awaits one.
    assert (created.status, created.amount, created.currency) == ("requires_payment_method", 1250, "eur")
    assert raw_client.v1.payment_intents.retrieve(created.payment_id).metadata["order"] == "order-41"

    confirmed = gateway.confirm_payment(created.payment_id, token="pm_card_visa", idempotency_key=new_key())
    assert confirmed == Charge(created.payment_id, "succeeded", 1250, "eur")
    assert confirmed.succeeded
    assert gateway.retrieve_payment(created.payment_id) == confirmed


def test_attaching_the_card_moves_the_intent_to_requires_confirmation_before_it_succeeds(gateway, raw_client):
    created = gateway.create_payment(
        amount=500, currency="eur", reference="order-42", idempotency_key=new_key()
    )
    raw_client.v1.payment_intents.update(created.payment_id, params={"payment_method": "pm_card_visa"})
    assert gateway.retrieve_payment(created.payment_id).status == "requires_confirmation"
    assert (
        gateway.confirm_payment(created.payment_id, token="pm_card_visa", idempotency_key=new_key()).status
        == "succeeded"
    )


def test_a_declined_card_raises_card_declined_with_a_code_and_the_payment_does_not_succeed(gateway):
    created = gateway.create_payment(
        amount=700, currency="eur", reference="order-43", idempotency_key=new_key()
    )
    with pytest.raises(CardDeclined) as declined:
        gateway.confirm_payment(
            created.payment_id, token="pm_card_chargeCustomerFail", idempotency_key=new_key()
        )
    assert declined.value.code == "card_declined"
    assert str(declined.value) == "Your card was declined."

    after = gateway.retrieve_payment(created.payment_id)
    assert not after.succeeded
    assert after.status == "requires_payment_method"
    assert after.decline_code == "card_declined"
    assert after.message == "Your card was declined."


@pytest.mark.xfail(
    raises=PaymentError,
    reason="localstripe keeps the failed charge as the intent's latest_charge, "
    "so the intent never returns to requires_confirmation; Stripe allows "
    "a new card after a decline",
)
def test_a_payment_declined_once_can_be_paid_with_another_card(gateway):
    created = gateway.create_payment(
        amount=700, currency="eur", reference="order-44", idempotency_key=new_key()
    )
    with pytest.raises(CardDeclined):
        gateway.confirm_payment(
            created.payment_id, token="pm_card_chargeCustomerFail", idempotency_key=new_key()
        )
    assert gateway.confirm_payment(
        created.payment_id, token="pm_card_visa", idempotency_key=new_key()
    ).succeeded


def test_a_payment_method_that_does_not_exist_is_refused_as_an_invalid_token(gateway):
    created = gateway.create_payment(
        amount=300, currency="eur", reference="order-45", idempotency_key=new_key()
    )
    with pytest.raises(InvalidToken) as refused:
        gateway.confirm_payment(created.payment_id, token="pm_doesNotExist123", idempotency_key=new_key())
    assert refused.value.code
    assert_not_leaked(refused.value, "pm_doesNotExist123")
    assert not gateway.retrieve_payment(created.payment_id).succeeded


def test_a_card_token_localstripe_does_not_know_is_refused_as_an_invalid_token(gateway):
    # Stripe takes tok_... as payment_method_data[card][token]; localstripe refuses
    # payment_method_data altogether, which is the refusal we can observe here.
    created = gateway.create_payment(
        amount=300, currency="eur", reference="order-46", idempotency_key=new_key()
    )
    with pytest.raises(InvalidToken) as refused:
        gateway.confirm_payment(created.payment_id, token="tok_visa", idempotency_key=new_key())
    assert_not_leaked(refused.value, "tok_visa")


@pytest.mark.parametrize("token", ["4242424242424242", "", "pm_", "pm_card visa", "src_123"])
def test_something_that_is_not_a_token_is_refused_before_stripe_is_asked(token):
    # No server at all: the refusal must come before any request.
    offline = StripeGateway(API_KEY, api_base="http://127.0.0.1:9", max_network_retries=0)
    with pytest.raises(InvalidToken) as refused:
        offline.confirm_payment("pi_123", token=token, idempotency_key=new_key())
    assert refused.value.code == "invalid_token"
    assert str(refused.value).startswith("The card token was not accepted.")  # not the token


def test_retrieving_a_payment_that_does_not_exist_is_a_payment_error(gateway):
    with pytest.raises(PaymentError) as missing:
        gateway.retrieve_payment("pi_doesNotExist")
    assert type(missing.value) is PaymentError
    assert missing.value.code == "resource_missing"


# -- refunds --------------------------------------------------------------------


def test_a_full_refund_succeeds_and_is_listed_with_our_reference(gateway):
    charge = paid(gateway, 1000)
    made = gateway.refund(
        charge.payment_id, amount=1000, idempotency_key="rf-key-1-" + new_key(), reference="refund-ref-1"
    )
    assert made.refund_id.startswith("re_")
    assert (made.payment_id, made.amount, made.currency, made.status, made.reference) == (
        charge.payment_id,
        1000,
        "eur",
        "succeeded",
        "refund-ref-1",
    )
    assert gateway.list_refunds(charge.payment_id) == [made]


def test_two_partial_refunds_are_both_made_and_both_listed_with_their_references(gateway):
    charge = paid(gateway, 1000)
    first = refund(gateway, charge.payment_id, 300)
    second = refund(gateway, charge.payment_id, 200)
    assert (first.amount, second.amount) == (300, 200)
    assert first.refund_id != second.refund_id
    listed = gateway.list_refunds(charge.payment_id)
    assert sorted(listed, key=lambda r: r.amount) == [second, first]
    assert {r.reference for r in listed} == {first.reference, second.reference}


def test_listing_refunds_reads_every_page(gateway):
    charge = paid(gateway, 1000)
    made = [refund(gateway, charge.payment_id, 10) for _ in range(5)]
    gateway.refund_page_size = 2
    listed = gateway.list_refunds(charge.payment_id)
    assert sorted(r.refund_id for r in listed) == sorted(r.refund_id for r in made)


@pytest.mark.xfail(
    raises=GatewayUnavailable,
    reason="localstripe answers 500 to listing the refunds of an intent that has "
    "no charge yet; Stripe answers an empty list",
)
def test_a_payment_that_was_never_confirmed_has_no_refunds(gateway):
    created = gateway.create_payment(
        amount=100, currency="eur", reference="order-48", idempotency_key=new_key()
    )
    assert gateway.list_refunds(created.payment_id) == []


def test_a_declined_payment_has_no_refunds(gateway):
    created = gateway.create_payment(
        amount=100, currency="eur", reference="order-49", idempotency_key=new_key()
    )
    with pytest.raises(CardDeclined):
        gateway.confirm_payment(
            created.payment_id, token="pm_card_chargeCustomerFail", idempotency_key=new_key()
        )
    assert gateway.list_refunds(created.payment_id) == []


def test_refunds_of_other_payments_are_not_listed(gateway):
    one, other = paid(gateway, 1000), paid(gateway, 1000)
    mine = refund(gateway, one.payment_id, 100)
    refund(gateway, other.payment_id, 100)
    assert gateway.list_refunds(one.payment_id) == [mine]


@pytest.mark.xfail(
    raises=pytest.fail.Exception,
    reason="localstripe does not enforce refund limits: it accepts refunds "
    "beyond the charged amount (Stripe answers amount_too_large or "
    "charge_already_refunded)",
)
def test_refunding_more_than_remains_is_refused(gateway):
    charge = paid(gateway, 1000)
    refund(gateway, charge.payment_id, 600)
    with pytest.raises(RefundFailed) as refused:
        refund(gateway, charge.payment_id, 600)
    assert refused.value.code in ("amount_too_large", "charge_already_refunded")


def test_refunding_a_declined_payment_is_refused_with_refund_failed(gateway):
    created = gateway.create_payment(
        amount=700, currency="eur", reference="order-47", idempotency_key=new_key()
    )
    with pytest.raises(CardDeclined):
        gateway.confirm_payment(
            created.payment_id, token="pm_card_chargeCustomerFail", idempotency_key=new_key()
        )
    with pytest.raises(RefundFailed) as refused:
        refund(gateway, created.payment_id, 700)
    assert refused.value.code
    assert "failed payment" in str(refused.value)


@pytest.mark.parametrize("amount", [0, -5, True, 10.5])
def test_a_refund_amount_that_is_not_a_positive_whole_number_is_refused(gateway, amount):
    with pytest.raises(RefundFailed) as refused:
        gateway.refund("pi_anything", amount=amount, idempotency_key=new_key(), reference="r")
    assert refused.value.code == "amount_invalid"


# -- transient failures -----------------------------------------------------------


def closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


def test_a_gateway_that_cannot_connect_is_unavailable_for_every_call():
    offline = StripeGateway(API_KEY, api_base=f"http://127.0.0.1:{closed_port()}", max_network_retries=0)
    calls = [
        lambda: offline.create_payment(amount=100, currency="eur", reference="o", idempotency_key=new_key()),
        lambda: offline.confirm_payment("pi_123", token="pm_card_visa", idempotency_key=new_key()),
        lambda: offline.retrieve_payment("pi_123"),
        lambda: offline.refund("pi_123", amount=100, idempotency_key=new_key(), reference="r"),
        lambda: offline.list_refunds("pi_123"),
    ]
    for call in calls:
        with pytest.raises(GatewayUnavailable) as unavailable:
            call()
        assert unavailable.value.code == "api_connection_error"
        assert_not_leaked(unavailable.value, API_KEY, "pm_card_visa")


class CannedStripe(http.server.BaseHTTPRequestHandler):
    """Answers every request with the server's `answer`: (status, headers, error body)."""

    def _reply(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        status, headers, error = self.server.answer
        body = json.dumps({"error": error}).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _reply

    def log_message(self, *args):
        pass


@pytest.fixture
def canned() -> Iterator[http.server.HTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CannedStripe)
    server.answer = (500, {}, {"type": "api_error", "message": "boom"})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def canned_gateway(server, key: str = API_KEY) -> StripeGateway:
    return StripeGateway(key, api_base=f"http://127.0.0.1:{server.server_address[1]}", max_network_retries=0)


def test_a_rate_limit_is_transient_and_carries_stripes_retry_after(canned):
    canned.answer = (
        429,
        {"Retry-After": "7"},
        {
            "type": "invalid_request_error",
            "code": "rate_limit",
            "message": "Too many requests hit the API too quickly.",
        },
    )
    with pytest.raises(GatewayUnavailable) as limited:
        canned_gateway(canned).retrieve_payment("pi_123")
    assert limited.value.code == "rate_limit"
    assert limited.value.retry_after == 7.0


def test_a_rate_limit_without_retry_after_leaves_the_wait_to_the_caller(canned):
    canned.answer = (
        429,
        {},
        {"type": "invalid_request_error", "code": "rate_limit", "message": "Too many requests."},
    )
    with pytest.raises(GatewayUnavailable) as limited:
        canned_gateway(canned).refund("pi_123", amount=100, idempotency_key=new_key(), reference="r")
    assert limited.value.retry_after is None


@pytest.mark.parametrize(
    "status, error",
    [
        (
            409,
            {
                "type": "invalid_request_error",
                "code": "idempotency_key_in_use",
                "message": "There is currently another in-progress request using this key.",
            },
        ),
        (
            409,
            {
                "type": "invalid_request_error",
                "code": "lock_timeout",
                "message": "This object cannot be accessed right now.",
            },
        ),
        (500, {"type": "api_error", "message": "Something went wrong on Stripe's end."}),
        (503, {"type": "api_error", "message": "Service unavailable."}),
    ],
)
def test_conflicts_and_server_errors_are_transient(canned, status, error):
    canned.answer = (status, {}, error)
    gateway = canned_gateway(canned)
    with pytest.raises(GatewayUnavailable) as unavailable:
        gateway.confirm_payment("pi_123", token="pm_card_visa", idempotency_key=new_key())
    assert unavailable.value.code == error.get("code", "api_error")
    with pytest.raises(GatewayUnavailable):
        gateway.create_payment(amount=100, currency="eur", reference="o", idempotency_key=new_key())


def test_reusing_an_idempotency_key_with_other_parameters_is_a_payment_error_not_transient(canned):
    canned.answer = (
        400,
        {},
        {
            "type": "idempotency_error",
            "message": "Keys for idempotent requests can only be used with "
            "the same parameters they were first used with.",
        },
    )
    with pytest.raises(PaymentError) as misuse:
        canned_gateway(canned).refund("pi_123", amount=100, idempotency_key=new_key(), reference="r")
    assert not isinstance(misuse.value, (GatewayUnavailable, RefundFailed))
    assert misuse.value.code == "idempotency_key_in_use"


@pytest.mark.parametrize("code", ["charge_already_refunded", "amount_too_large"])
def test_stripes_refusal_of_an_over_refund_is_a_refund_failure_with_its_code(canned, code):
    # localstripe accepts any refund (see the xfail above); Stripe answers 400.
    canned.answer = (
        400,
        {},
        {
            "type": "invalid_request_error",
            "code": code,
            "message": "Charge ch_123 has already been refunded.",
        },
    )
    with pytest.raises(RefundFailed) as refused:
        canned_gateway(canned).refund("pi_123", amount=100, idempotency_key=new_key(), reference="r")
    assert refused.value.code == code


def test_other_invalid_requests_are_payment_errors_with_stripes_message_and_code(canned):
    canned.answer = (
        400,
        {},
        {
            "type": "invalid_request_error",
            "code": "parameter_invalid_integer",
            "param": "amount",
            "message": "Invalid integer: abc",
        },
    )
    with pytest.raises(PaymentError) as invalid:
        canned_gateway(canned).create_payment(
            amount=100, currency="eur", reference="o", idempotency_key=new_key()
        )
    assert type(invalid.value) is PaymentError
    assert (str(invalid.value), invalid.value.code) == ("Invalid integer: abc", "parameter_invalid_integer")


def test_a_decline_carries_stripes_decline_code_when_there_is_one(canned):
    canned.answer = (
        402,
        {},
        {
            "type": "card_error",
            "code": "card_declined",
            "decline_code": "insufficient_funds",
            "message": "Your card has insufficient funds.",
        },
    )
    gateway = canned_gateway(canned)
    with pytest.raises(CardDeclined) as declined:
        gateway.confirm_payment("pi_123", token="pm_card_visa", idempotency_key=new_key())
    assert declined.value.code == "insufficient_funds"


def test_an_unknown_payment_method_named_by_stripe_is_an_invalid_token_without_the_token(canned):
    canned.answer = (
        400,
        {},
        {
            "type": "invalid_request_error",
            "code": "resource_missing",
            "param": "payment_method",
            "message": "No such PaymentMethod: 'pm_secretish123'",
        },
    )
    with pytest.raises(InvalidToken) as refused:
        canned_gateway(canned).confirm_payment("pi_123", token="pm_secretish123", idempotency_key=new_key())
    assert refused.value.code == "resource_missing"
    assert_not_leaked(refused.value, "pm_secretish123")


# -- keys -------------------------------------------------------------------------


def settings_with(**changes):
    return dataclasses.replace(load_settings(), **changes)


def test_from_settings_refuses_a_missing_key():
    with pytest.raises(OrdersError, match="STRIPE_API_KEY is not set"):
        StripeGateway.from_settings(settings_with(stripe_api_key=None))
    with pytest.raises(OrdersError, match="STRIPE_API_KEY is not set"):
        StripeGateway.from_settings(settings_with(stripe_api_key="   "))


@pytest.mark.parametrize("key", ["pk_test_publishable_123", "whsec_abc123", "sk-test-123", "test_sk_123"])
def test_from_settings_refuses_a_key_that_is_not_secret_or_restricted(key):
    with pytest.raises(OrdersError, match="must start with sk_") as refused:
        StripeGateway.from_settings(settings_with(stripe_api_key=key))
    assert_not_leaked(refused.value, key)


def test_from_settings_builds_a_gateway_on_the_configured_base(localstripe_url):
    gateway = StripeGateway.from_settings(
        settings_with(
            stripe_api_key=API_KEY, stripe_api_base=localstripe_url + "/", stripe_max_network_retries=0
        )
    )
    assert gateway.name == "stripe"
    assert paid(gateway).succeeded
    assert API_KEY not in repr(gateway)


def test_from_settings_accepts_a_restricted_key():
    gateway = StripeGateway.from_settings(settings_with(stripe_api_key="rk_test_restricted"))
    assert gateway.api_base == "https://api.stripe.com"


def test_a_key_stripe_rejects_is_reported_without_the_key(localstripe_url):
    # localstripe accepts any sk_ key but refuses restricted (rk_) keys with a 401.
    secret = "rk_test_do_not_show_me"
    rejected = StripeGateway(secret, api_base=localstripe_url, max_network_retries=0)
    with pytest.raises(PaymentError) as refused:
        rejected.create_payment(amount=100, currency="eur", reference="o", idempotency_key=new_key())
    assert "Stripe rejected the API key" in str(refused.value)
    assert refused.value.code == "authentication_error"
    assert_not_leaked(refused.value, secret)


def test_a_permission_refusal_is_reported_without_the_key(canned):
    secret = "rk_live_do_not_show_me"
    canned.answer = (
        403,
        {},
        {"type": "invalid_request_error", "message": f"The provided key '{secret}' does not have access."},
    )
    with pytest.raises(PaymentError) as refused:
        canned_gateway(canned, secret).list_refunds("pi_123")
    assert "Stripe rejected the API key" in str(refused.value)
    assert refused.value.code == "permission_error"
    assert_not_leaked(refused.value, secret)


def test_the_api_key_never_appears_in_any_error(gateway):
    charge = paid(gateway, 500)
    created = gateway.create_payment(amount=500, currency="eur", reference="o", idempotency_key=new_key())
    failures = [
        lambda: gateway.confirm_payment(
            created.payment_id, token="pm_card_chargeCustomerFail", idempotency_key=new_key()
        ),
        lambda: gateway.confirm_payment(created.payment_id, token="pm_missing", idempotency_key=new_key()),
        lambda: gateway.confirm_payment(charge.payment_id, token="pm_card_visa", idempotency_key=new_key()),
        lambda: gateway.retrieve_payment("pi_missing"),
        lambda: gateway.refund("pi_missing", amount=1, idempotency_key=new_key(), reference="r"),
        lambda: gateway.list_refunds("pi_missing"),
    ]
    for failure in failures:
        with pytest.raises(PaymentError) as raised:
            failure()
        assert_not_leaked(raised.value, API_KEY)
