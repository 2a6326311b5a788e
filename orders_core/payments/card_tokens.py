"""Stripe's test tokens and what each does, so the offline gateway behaves like
Stripe's test mode and the checkout page can list them."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class TestToken:
    token: str
    brand: str
    decline_code: str | None  # None: the charge succeeds
    description: str
    refunds_fail: bool = False


DECLINE_MESSAGES = {
    "generic_decline": "Your card was declined.",
    "insufficient_funds": "Your card has insufficient funds.",
    "fraudulent": "Your card was declined (suspected fraud).",
    "expired_card": "Your card has expired.",
    "incorrect_cvc": "Your card's security code is incorrect.",
    "processing_error": "An error occurred while processing your card. Try again in a little bit.",
}

_SUCCEEDING = [
    ("tok_visa", "visa"),
    ("tok_mastercard", "mastercard"),
    ("tok_amex", "amex"),
    ("pm_card_visa", "visa"),
    ("pm_card_mastercard", "mastercard"),
]
_DECLINING = [
    ("ChargeDeclined", "generic_decline"),
    ("ChargeDeclinedInsufficientFunds", "insufficient_funds"),
    ("ChargeDeclinedFraudulent", "fraudulent"),
    ("ChargeDeclinedExpiredCard", "expired_card"),
    ("ChargeDeclinedIncorrectCvc", "incorrect_cvc"),
    ("ChargeDeclinedProcessingError", "processing_error"),
]


def _build() -> dict[str, TestToken]:
    tokens = {}
    for token, brand in _SUCCEEDING:
        tokens[token] = TestToken(token, brand, None, f"{brand.capitalize()}: the charge succeeds")
    for suffix, code in _DECLINING:
        for prefix in ("tok_", "pm_card_"):
            token = prefix + suffix[0].lower() + suffix[1:]
            tokens[token] = TestToken(token, "visa", code, f"Declined: {code}")
    for token in ("tok_refundFail", "pm_card_refundFail"):
        tokens[token] = TestToken(
            token, "visa", None, "The charge succeeds; any refund of it fails", refunds_fail=True
        )
    return tokens


TEST_TOKENS: dict[str, TestToken] = _build()
