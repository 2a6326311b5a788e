"""The payment gateway interface: what Orders Desk needs from Stripe, no more.

Charging is two calls, create then confirm, so that the gateway's payment id is
committed in our database before any money moves: after a crash we look the
payment up by that id instead of trusting the gateway to honour an idempotency key.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

from ..errors import CardDeclined, GatewayUnavailable, InvalidToken, PaymentError, RefundFailed

__all__ = [
    "Charge",
    "GatewayRefund",
    "PaymentGateway",
    "CardDeclined",
    "GatewayUnavailable",
    "InvalidToken",
    "PaymentError",
    "RefundFailed",
]


@dataclasses.dataclass(frozen=True)
class Charge:
    payment_id: str
    # Stripe's PaymentIntent statuses: requires_payment_method (declined or not yet
    # given a card), requires_confirmation, processing, succeeded, canceled.
    status: str
    amount: int
    currency: str
    decline_code: str | None = None
    message: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"


@dataclasses.dataclass(frozen=True)
class GatewayRefund:
    refund_id: str
    payment_id: str
    amount: int
    currency: str
    status: str  # succeeded, pending, failed, canceled
    reference: str  # our refund's idempotency key, kept in the gateway's metadata


class PaymentGateway(Protocol):
    name: str

    def create_payment(self, *, amount: int, currency: str, reference: str, idempotency_key: str) -> Charge:
        """Register a payment of `amount` for `reference` (our order); no money moves."""

    def confirm_payment(self, payment_id: str, *, token: str, idempotency_key: str) -> Charge:
        """Charge the card. Raises CardDeclined, InvalidToken or GatewayUnavailable."""

    def retrieve_payment(self, payment_id: str) -> Charge: ...

    def cancel_payment(self, payment_id: str) -> Charge:
        """Make sure an unfinished payment can never be charged any more (a confirm still
        on its way is refused). Returns the payment as it ends: canceled, or succeeded
        when the charge got there first."""

    def refund(self, payment_id: str, *, amount: int, idempotency_key: str, reference: str) -> GatewayRefund:
        """Refund part or all of a payment. Raises RefundFailed or GatewayUnavailable."""

    def list_refunds(self, payment_id: str) -> list[GatewayRefund]:
        """Every refund the gateway holds for the payment, ours or not."""
