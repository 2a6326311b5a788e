"""Promise 5: no secret or card data in logs or the database.

Every test of this suite runs with logging captured at DEBUG and scanned for Stripe
secret keys (sk_/rk_), webhook secrets (whsec_) and Luhn-valid 13-19 digit numbers
(tests/reliability/conftest.py). The tests here first show the scanner finds what
it looks for, then drive whole lifecycles on both gateways, pasting keys and card
numbers wherever a person could type them, and scan the database, every error
message and the log.
"""

from __future__ import annotations

import dataclasses
import logging

import pytest

from orders_core import lifecycle
from orders_core.checkout import pay_order, place_order
from orders_core.config import load_settings
from orders_core.customers import AddressInput
from orders_core.errors import OrdersError, PaymentError
from orders_core.payments import Gateways
from orders_core.payments.stripe_gateway import StripeGateway
from orders_core.queries import order_detail
from orders_core.staff import SYSTEM, Actor, Role
from tests.reliability.evidence import luhn_valid, scan_database, scan_error, scan_text, table_checksums
from tests.support.fakes import CrashingGateway, SimulatedCrash

API_KEY = "sk_test_orders_desk"
PASTED = [
    "sk_live_51HqDxYKZf0fRpLk2nQ8s9TvWx",
    "rk_live_51HqDxYKZf0fRpLk2nQ8s9",
    "whsec_9f8e7d6c5b4a39281706f5e4",
    "4242424242424242",
    "4242 4242 4242 4242",
    "5555-5555-5555-4444",
    "378282246310005",
]
SUPPORT = Actor("support@ordersdesk.test", Role.SUPPORT)


# -- the scanner finds what it must, and only that ------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "key=sk_test_orders_desk",
        "Bearer sk_live_51HqDxYKZf0fRpLk2n",
        "rk_test_abcd1234",
        "secret whsec_9f8e7d6c5b4a3928",
        "card 4242424242424242",
        "4242 4242 4242 4242 exp 12/34",
        "4000-0566-5566-5556",
        "amex 378282246310005",
        "tok_4242424242424242",
        "6011111111111117",
    ],
)
def test_the_scanner_finds_keys_webhook_secrets_and_card_numbers(text):
    assert scan_text(text, "sample"), text


@pytest.mark.parametrize(
    "text",
    [
        "4242424242424241",  # fails the Luhn check
        "ORD-000123:refund:1",
        "pi_sim_1234567890123456789abcde",
        "re_1234567890123456789",
        "2026-11-26 23:34:31.123456",
        "amount=99999999",
        "sk_",
        "task_test",
        "whsec_",
        "(1, 2, 1999, 500, 3998)",
        "1764201271",
        "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
    ],
)
def test_the_scanner_leaves_ids_timestamps_and_amounts_alone(text):
    assert scan_text(text, "sample") == [], text


def test_luhn():
    assert luhn_valid("79927398713") and not luhn_valid("79927398710")


@pytest.mark.plants_secrets
def test_the_debug_log_scan_sees_what_any_logger_writes(debug_log):
    logging.getLogger("orders_core.anything").debug("charging with %s", "sk_live_51HqDxYKZf0fRpLk")
    logging.getLogger("stripe").info("card=%s", "4242 4242 4242 4242")
    assert {f.kind for f in debug_log.findings()} == {"secret", "card number"}


# -- whole lifecycles ----------------------------------------------------------------


def run_lifecycle(shop, gateways, token: str) -> list[BaseException]:
    """Checkout, fulfil, return; checkout, cancel; a crash after a refund and its
    retry; keys and card numbers pasted as tokens. Returns every error raised."""
    errors: list[BaseException] = []
    for secret in PASTED:
        with pytest.raises(OrdersError) as refused:
            place_order(
                shop.db,
                shop.customer,
                items=[("BOX-USD", 1)],
                token=secret,
                address_id=shop.address_id,
                gateways=gateways,
            )
        errors.append(refused.value)
    first = place_order(
        shop.db, shop.customer, items=[("PASS-USD", 2)], token=token, gateways=gateways
    ).number
    lifecycle.fulfill_order(shop.db, SYSTEM, first, gateways=gateways)
    lifecycle.return_order(shop.db, SUPPORT, first, reason="Damaged", gateways=gateways)
    second = place_order(
        shop.db, shop.customer, items=[("PASS-USD", 1)], token=token, gateways=gateways
    ).number
    crashing = Gateways(shop.db, gateways.settings).use(
        CrashingGateway(gateways.default, crash_after="refund")
    )
    with pytest.raises(SimulatedCrash):
        lifecycle.cancel_order(shop.db, SUPPORT, second, gateways=crashing)
    assert lifecycle.cancel_order(shop.db, SUPPORT, second, gateways=gateways).status == "canceled"
    for secret in PASTED:
        with pytest.raises(OrdersError) as refused:
            pay_order(shop.db, SYSTEM, second, token=secret, gateways=gateways)
        errors.append(refused.value)
    for number in (first, second):
        order = order_detail(shop.db, number, actor=SYSTEM)
        assert order.refunded_amount == order.total_amount
    return errors


def assert_nothing_secret(shop, errors, debug_log) -> None:
    for error in errors:
        assert scan_error(error) == [], f"{type(error).__name__} repeats a secret: {error}"
    assert scan_database(shop.db) == []
    assert debug_log.texts, "nothing was logged: the capture is not working"


def test_a_whole_lifecycle_on_the_offline_gateway_leaves_no_secret_anywhere(shop, monkeypatch, debug_log):
    monkeypatch.setenv("ORDERS_PAYMENT_LEASE_SECONDS", "0")
    errors = run_lifecycle(shop, Gateways(shop.db), "tok_visa")
    assert_nothing_secret(shop, errors, debug_log)


@pytest.mark.stripe
def test_a_whole_lifecycle_on_stripe_leaves_no_secret_anywhere(
    sqlite_shop, localstripe_url, monkeypatch, debug_log
):
    monkeypatch.setenv("ORDERS_PAYMENT_LEASE_SECONDS", "0")
    settings = dataclasses.replace(
        load_settings(),
        gateway="stripe",
        stripe_api_key=API_KEY,
        stripe_api_base=localstripe_url,
        stripe_max_network_retries=0,
    )
    errors = run_lifecycle(sqlite_shop, Gateways(sqlite_shop.db, settings), "pm_card_visa")
    # A key the gateway refuses, and a card it declines, explained without the key.
    rejected = StripeGateway("rk_test_do_not_log_me_123", api_base=localstripe_url, max_network_retries=0)
    with pytest.raises(PaymentError) as refused:
        rejected.create_payment(amount=100, currency="usd", reference="o", idempotency_key="k-1")
    errors.append(refused.value)
    assert_nothing_secret(sqlite_shop, errors, debug_log)
    stripe_records = [text for name, text in debug_log.texts if name.startswith("stripe")]
    assert stripe_records, "the Stripe SDK logged nothing at DEBUG: the scan saw none of its requests"
    assert not any("rk_test_do_not_log_me" in text or API_KEY in text for _, text in debug_log.texts)


# -- free text: where a person can type anything --------------------------------------

FREE_TEXT = {
    "staff note": lambda shop, number, text: lifecycle.add_note(shop.db, SUPPORT, number, text),
    "cancel reason": lambda shop, number, text: lifecycle.cancel_order(shop.db, SUPPORT, number, reason=text),
    "shipping address": lambda shop, number, text: place_order(
        shop.db,
        shop.customer,
        items=[("BOX-USD", 1)],
        token="tok_visa",
        address=AddressInput("Ada Lovelace", text, "London", "N1 9GU", "GB"),
    ),
}


@pytest.mark.plants_secrets
@pytest.mark.parametrize("field", sorted(FREE_TEXT))
@pytest.mark.parametrize(
    "pasted",
    ["card 4242 4242 4242 4242 exp 12/30", "key sk_live_51HqDxYKZf0fRpLk2nQ8s9TvWx"],
    ids=["card number", "secret key"],
)
def test_a_card_number_or_key_typed_into_free_text_is_not_stored(sqlite_shop, field, pasted):
    shop = sqlite_shop
    number = place_order(shop.db, shop.customer, items=[("PASS-USD", 1)], token="tok_visa").number
    before = table_checksums(shop.db)
    try:
        FREE_TEXT[field](shop, number, pasted)
    except OrdersError as refused:  # refusing it, with a message that does not repeat it, is fine
        assert scan_text(str(refused), "message") == []
        assert table_checksums(shop.db) == before
    assert scan_database(shop.db) == []
