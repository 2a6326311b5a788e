"""What a reconciliation reads from a gateway: its payments and refunds of a period.

A separate protocol from PaymentGateway (which charges and refunds), so that a
gateway, or a test's wrapper of one, need not list to take payments. Both gateways
implement it: the simulated one from its ledger, offline; Stripe from its list
endpoints, paginated. Times are naive UTC, the period half-open [created_from,
created_to).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from typing import Protocol

from .base import Charge, GatewayRefund


@dataclasses.dataclass(frozen=True)
class ListedPayment:
    """A payment as the gateway lists it (a Stripe PaymentIntent)."""

    payment_id: str
    status: str  # Stripe's PaymentIntent statuses; only "succeeded" moved money
    amount: int
    currency: str
    reference: str  # our order number, kept in the gateway's metadata ("" if none)
    created: dt.datetime  # naive UTC

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"


class GatewayLedger(Protocol):
    name: str

    def list_payments(self, *, created_from: dt.datetime, created_to: dt.datetime) -> Iterator[ListedPayment]:
        """Every payment the gateway created in [created_from, created_to), any status."""
        ...

    def list_period_refunds(
        self, *, created_from: dt.datetime, created_to: dt.datetime
    ) -> Iterator[GatewayRefund]:
        """Every refund the gateway created in [created_from, created_to), ours or not."""
        ...

    def retrieve_payment(self, payment_id: str) -> Charge: ...

    def list_refunds(self, payment_id: str) -> list[GatewayRefund]: ...


__all__ = ["ListedPayment", "GatewayLedger"]
